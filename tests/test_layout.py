"""The layout: a library package (clip_study) apart from thin DVC entry points (stages), deps in dvc.yaml
that follow the imports, no import cycle, and params keys spoken of only by the params layer."""

import ast
import copy
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from clip_study.pipeline.schema import SECTIONS
from tests.dvc_repo import project_copy, sh
from tests.imports import ROOT, deps_problems, files_run_by, imported_modules, module_file, stage_modules

PIPELINES = [ROOT / "dvc.yaml", ROOT / "demo" / "dvc.yaml"]
LIBRARY = sorted((ROOT / "clip_study").rglob("*.py"))
STAGES = sorted(file for file in (ROOT / "stages").glob("*.py") if file.name != "__init__.py")
DEMO_STAGES = {"generate", "pretrain", "heldout"}


def module_name(file: Path) -> str:
    return ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("dvc_yaml", PIPELINES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_stage_depends_on_exactly_the_project_files_it_runs(dvc_yaml):
    assert deps_problems(dvc_yaml) == []


def test_a_dep_missing_from_dvc_yaml_is_caught():
    stages = yaml.safe_load(PIPELINES[0].read_text())["stages"]
    planted = copy.deepcopy(stages)
    planted["extract"]["do"]["deps"].remove("clip_study/data/subset.py")
    planted["probe"]["do"]["deps"].append("clip_study/models/encoding.py")
    assert deps_problems(PIPELINES[0], planted) == [
        "dvc.yaml: stage extract runs clip_study/data/subset.py, which its deps do not cover: add it (or its "
        "folder) to the stage's deps",
        "dvc.yaml: stage probe lists clip_study/models/encoding.py in its deps but runs no file of it: remove it"]


def test_the_import_walk_follows_function_level_imports_and_skips_type_hints():
    run = {file.relative_to(ROOT).as_posix() for file in files_run_by("stages.extract")}
    assert "clip_study/data/sources.py" not in run  # subset imports it for a type hint only
    assert {"stages/extract.py", "clip_study/models/pixels.py", "clip_study/data/images.py",
            "clip_study/hub.py"} <= run
    assert "clip_study.data.features" in imported_modules(ROOT / "clip_study" / "evaluation" / "logistic.py")


def test_every_stage_file_is_a_thin_entry_point_that_a_pipeline_runs():
    run = {module for dvc_yaml in PIPELINES for module in stage_modules(dvc_yaml).values()}
    for file in STAGES:
        tree = ast.parse(file.read_text())
        main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), None)
        assert module_name(file) in run, f"{file.name} is no stage of dvc.yaml or demo/dvc.yaml: move it to clip_study"
        assert main is not None and [arg.arg for arg in main.args.args] == ["argv"], file.name
        assert len(file.read_text().splitlines()) <= 120, f"{file.name} is over 120 lines: move logic to clip_study"


def import_graph() -> dict[str, set[str]]:
    files = LIBRARY + sorted((ROOT / "stages").glob("*.py"))
    return {module_name(file): {m for m in imported_modules(file) if module_file(m) is not None} for file in files}


def test_no_import_cycle():
    graph = import_graph()
    resolved = {name: {m if m in graph else m.rsplit(".", 1)[0] for m in deps} - {name} for name, deps in graph.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for child in sorted(resolved.get(name, ())):
            assert state.get(child) != "open", "import cycle: " + " -> ".join([*path, name, child])
            if child not in state:
                visit(child, [*path, name])
        state[name] = "done"

    for name in sorted(resolved):
        if name not in state:
            visit(name, [])


def test_the_library_never_imports_the_stages_and_only_demo_code_imports_the_demo():
    for name, imports in import_graph().items():
        assert not any(m.startswith("stages") for m in imports) or name.startswith("stages"), name
        if name.startswith("clip_study") and not name.startswith("clip_study.pipeline"):
            assert not any(m.startswith("clip_study.pipeline") for m in imports), f"{name} imports the params layer"
        is_demo = name.startswith("clip_study.demo") or name.split(".")[-1] in DEMO_STAGES
        assert is_demo or not any(m.startswith("clip_study.demo") for m in imports), f"{name} imports the demo"


def strings_in(file: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(file.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_only_the_params_layer_speaks_of_params_keys():
    keys = re.compile(r"\b(" + "|".join(f"{section}\\.{key}" for section, keys in SECTIONS.items()
                                         for key in keys) + r")\b")
    for file in LIBRARY:
        if "pipeline" not in file.parts:
            spoken = [match for text in strings_in(file) for match in keys.findall(text)]
            assert spoken == [], f"{file.relative_to(ROOT)} names params keys {spoken}: say it in the stage"


def test_the_committed_demo_lock_records_the_code_and_params_in_the_tree(tmp_path):
    """demo/dvc.lock must be the record of a run of the committed code and params, so that a fresh clone
    sees the demo up to date (only its data, never committed, is missing) and its metrics are what this code
    makes. A code change without rerunning the demo fails here, naming the stage and the files."""
    repo = project_copy(tmp_path, "demo/dvc.yaml", "demo/params.yaml", "demo/dvc.lock")
    status = json.loads(sh(repo / "demo", sys.executable, "-m", "dvc", "status", "--json").strip().splitlines()[-1])
    stale = {}
    for stage, entries in status.items():
        for entry in (e for e in entries if isinstance(e, dict)):
            deps = entry.get("changed deps", {})
            changed = {os.path.relpath(path, repo / "demo"): state for path, state in deps.items()
                       if state != "deleted"}  # deleted: data a fresh clone has not made yet, not a change
            changed |= {f"{key} (param)": state for key, state in entry.get("changed params", {}).items()}
            if changed or "changed command" in entry:
                stale[stage] = changed or "command"
    assert stale == {}, f"demo/dvc.lock does not record the code and params in the tree: {stale}; rerun the demo " \
                        "(cd demo && dvc repro) and commit demo/dvc.lock and demo/metrics"
