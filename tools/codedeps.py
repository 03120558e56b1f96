"""Each stage's code deps in dvc.yaml and demo/dvc.yaml, written from the imports of the module its command
runs, so that no list of code files is kept by hand.

A stage whose command is ``python -m stages.<name>`` depends on every project file that command executes
(``tools.imports.files_run_by``): an edit reruns exactly the stages that run the edited file. In the file's
text, a stage's deps are its data deps (written by hand, kept in place) followed by its code deps (the
``.py`` files under stages/ and clip_study/, rewritten here); nothing else of the file changes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from tools.imports import ROOT, files_run_by, runs_no_code

PIPELINES = ("dvc.yaml", "demo/dvc.yaml")
STAGE_COMMAND = re.compile(r"python -m (stages\.\w+)")
CODE = re.compile(r"(\.\./)*(stages|clip_study)/\S+\.py")


def code_files(module: str, root: Path = ROOT) -> list[Path]:
    """The files ``python -m <module>`` runs that can change a result, the stage's own file first."""
    run = sorted(file for file in files_run_by(module, root) if not runs_no_code(file))
    own = root.joinpath(*module.split(".")).with_suffix(".py")
    return [own, *(file for file in run if file != own)]


def stage_modules(text: str) -> dict[str, tuple[str, str]]:
    """Stage name -> (module its command runs, its wdir), for the stages that run a project module."""
    stages = (yaml.safe_load(text) or {}).get("stages", {})
    found = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)  # a foreach stage's definition is under "do"
        match = STAGE_COMMAND.search(str(body.get("cmd", "")))
        if match:
            found[name] = (match.group(1), str(body.get("wdir", ".")))
    return found


def with_code_deps(text: str, pipeline: Path, root: Path = ROOT) -> str:
    """``text`` of ``pipeline`` (a dvc.yaml) with each stage's code deps rewritten from the imports."""
    modules = stage_modules(text)
    lines, out, stage, index = text.splitlines(), [], None, 0
    while index < len(lines):
        line = lines[index]
        header = re.fullmatch(r"  (\w[\w-]*):\s*(#.*)?", line)
        if header:
            stage = header.group(1)
        out.append(line)
        index += 1
        deps = re.fullmatch(r"(\s+)deps:\s*", line)
        if not (deps and stage in modules):
            continue
        indent = len(deps.group(1))
        items = []
        while index < len(lines) and (not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent):
            items.append(lines[index])
            index += 1
        item_indent = next((item[:len(item) - len(item.lstrip())] for item in items if item.strip()), " " * (indent + 2))
        kept = [item for item in items if not CODE.fullmatch(item.strip().removeprefix("- ").strip())]
        module, wdir = modules[stage]
        folder = (pipeline.parent / wdir).resolve()
        code = [f"{item_indent}- {os.path.relpath(file, folder)}" for file in code_files(module, root)]
        trailing = []
        while kept and not kept[-1].strip():
            trailing.insert(0, kept.pop())
        out += kept + code + trailing
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def generators(root: Path = ROOT) -> dict[str, object]:
    """tools.sync's entries: each pipeline file -> its rewrite."""
    return {path: (lambda text, path=path: with_code_deps(text, root / path, root)) for path in PIPELINES}
