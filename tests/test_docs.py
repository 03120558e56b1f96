"""The docs hold together: every relative link in README.md and docs/*.md resolves to a file of the
repository, every ``#anchor`` to a heading of the file it names (GitHub's slugs), and the generated sections
(``python -m tools.sync``) are current. Plain text work: no torch, a second or two in all."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import doc_tables, sync

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans removed."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, CODE_SPAN.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: links and images by their text, then lower case, punctuation dropped
    but for '-' and '_', each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(root: Path) -> list[str]:
    """``file:line: target: what is wrong`` for every relative link or anchor of the docs that does not
    resolve (web links are not fetched)."""
    problems = []
    for file in doc_files(root):
        where = file.relative_to(root).as_posix()
        for number, line in prose(file.read_text()):
            for target in LINK.findall(line):
                if SCHEME.match(target):
                    continue
                path, _, anchor = target.partition("#")
                resolved = (file.parent / path).resolve() if path else file
                if not resolved.exists():
                    problems.append(f"{where}:{number}: {target}: no such file")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                    problems.append(f"{where}:{number}: {target}: no heading with the anchor #{anchor}")
    return problems


def test_every_link_and_anchor_of_the_docs_resolves():
    assert broken_links(ROOT) == []


def test_the_checker_reports_exactly_a_planted_broken_link_and_anchor(tmp_path):
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    assert broken_links(tmp_path) == []
    page = tmp_path / "docs" / "comparing.md"
    lines = page.read_text().splitlines()
    lines += ["", "See [the old guide](old-guide.md) and [the stages](stages.md#no-such-stage).",
              "Not links: `[code](nowhere.md)` and", "```", "[fenced](nowhere.md)", "```"]
    page.write_text("\n".join(lines) + "\n")
    planted = len(lines) - 4
    assert broken_links(tmp_path) == [
        f"docs/comparing.md:{planted}: old-guide.md: no such file",
        f"docs/comparing.md:{planted}: stages.md#no-such-stage: no heading with the anchor #no-such-stage",
    ]


@pytest.mark.parametrize("heading, anchor", [
    ("Quick start", "quick-start"),
    ("Params (`params.yaml`)", "params-paramsyaml"),
    ("zsinit: a few-shot head that starts as zero-shot", "zsinit-a-few-shot-head-that-starts-as-zero-shot"),
    ("Past one machine: GPUs, Ray and a shared remote", "past-one-machine-gpus-ray-and-a-shared-remote"),
    ("check, generate, pretrain, heldout (demo)", "check-generate-pretrain-heldout-demo"),
    ("A [linked](x.md) heading_with_underscore", "a-linked-heading_with_underscore"),
])
def test_anchors_follow_githubs_slugs(heading, anchor):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n## Notes\n```\n# not a heading\n```\n## Notes\n")
    assert anchors(page) == {"title", "notes", "notes-1"}


def test_the_generated_sections_are_current():
    stale = sync.stale()
    assert not stale, f"stale: {sorted(stale)}; run python -m tools.sync"


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


def test_a_result_file_without_machine_or_date_says_so():
    assert doc_tables.provenance({"cores": 2}) == "machine: not recorded (2 cores); date: not recorded"
    assert doc_tables.provenance({"cpu": "AMD EPYC", "cores": 2, "measured": "2025-01-31T10:00:00+00:00"}) == \
        "machine: AMD EPYC, 2 cores; date: 2025-01-31T10:00:00+00:00"
