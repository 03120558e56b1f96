"""Every generated file or section of the repository, rewritten from its source of truth in one command.

    python -m tools.sync           # rewrite what is stale
    python -m tools.sync --check   # list what is stale, exit 1 (tests/test_generated.py runs this)

A generator maps the current text of a file to the text it should have; it owns either the whole file or
the lines between two markers (``replace_between``), so hand-written prose around a generated table stays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
Generator = Callable[[str], str]  # current text -> wanted text


def begin_marker(name: str) -> str:
    return f"<!-- generated: {name} (python -m tools.sync); edit the source, not these lines -->"


def end_marker(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def replace_between(text: str, name: str, body: str) -> str:
    """``text`` with the lines between the markers of ``name`` replaced by ``body``."""
    begin, end = begin_marker(name), end_marker(name)
    if begin not in text or end not in text:
        raise SystemExit(f"tools.sync: the markers of '{name}' are missing; put these two lines where it goes:\n"
                         f"{begin}\n{end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body.rstrip()}\n{end}{tail}"


def generators() -> dict[str, Generator]:
    """Path relative to the repository root -> its generator. Imported here so that each generator's
    dependencies load only when the command runs."""
    from tools import codedeps, doc_tables, metrics_doc, params_doc

    found: dict[str, Generator] = {
        "README.md": doc_tables.readme,                   # the demo's results, from demo/metrics
        "docs/performance.md": doc_tables.performance,   # the benchmarks' figures, from bench/*.json
        "docs/stages.md": doc_tables.stages,             # each stage's params and outputs, from the dvc.yaml files
        "docs/python.md": doc_tables.python_output,      # what the notebook example prints, from demo/metrics
    }
    found.update(codedeps.generators())     # each stage's code deps, from the imports
    found.update(params_doc.generators())   # docs/params.md, from the params sections
    found[metrics_doc.PATH] = metrics_doc.metrics_doc  # docs/metrics.md, from clip_study/metrics_files/
    return found


def stale(root: Path = ROOT) -> dict[str, str]:
    """Path -> the text it should have, for every generated file that differs from it."""
    out = {}
    for path, generate in generators().items():
        file = root / path
        current = file.read_text() if file.exists() else ""
        wanted = generate(current)
        if wanted != current:
            out[path] = wanted
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale files and exit 1; write nothing")
    args = parser.parse_args(argv)
    changes = stale()
    for path, text in changes.items():
        if args.check:
            print(f"{path} is stale: run python -m tools.sync")
        else:
            (ROOT / path).write_text(text)
            print(f"{path} rewritten")
    return 1 if args.check and changes else 0


if __name__ == "__main__":
    sys.exit(main())
