"""The layout: a library package (clip_study) apart from thin DVC entry points (stages), deps in dvc.yaml
that follow the imports, no import cycle, and params keys spoken of only by the params layer."""

import ast
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from clip_study.pipeline.schema import SECTIONS
from tests.dvc_repo import DEMO_FILES, project_copy, sh
from tools.codedeps import stage_modules, with_code_deps
from tools.imports import ROOT, files_run_by, imported_modules, module_file

PIPELINES = [ROOT / "dvc.yaml", ROOT / "demo" / "dvc.yaml"]
LIBRARY = sorted((ROOT / "clip_study").rglob("*.py"))
STAGES = sorted(file for file in (ROOT / "stages").glob("*.py") if file.name != "__init__.py")
DEMO_STAGES = {"generate", "pretrain", "heldout"}


def module_name(file: Path) -> str:
    return ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("dvc_yaml", PIPELINES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_stage_depends_on_exactly_the_project_files_it_runs(dvc_yaml):
    """The code deps are written from the imports by ``python -m tools.sync``; a hand edit or a new import
    without rerunning it fails here."""
    text = dvc_yaml.read_text()
    assert with_code_deps(text, dvc_yaml) == text, "run python -m tools.sync"


def test_a_dep_missing_from_dvc_yaml_or_one_too_many_is_put_right():
    text = PIPELINES[0].read_text()
    planted = text.replace("      - clip_study/data/subset.py\n", "", 1)  # extract's, the first per-pair stage
    planted = planted.replace("        - stages/fetch.py\n", "        - stages/fetch.py\n        - clip_study/models/encoding.py\n")
    assert planted.count("\n") == text.count("\n")
    assert with_code_deps(planted, PIPELINES[0]) == text


def stages_rerun_by(dvc_yaml: Path) -> dict[str, list[str]]:
    """Library module file -> the stages of ``dvc_yaml`` whose deps list it (an edit to it reruns those)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    found: dict[str, list[str]] = {}
    for name, stage in stages.items():
        for dep in stage.get("do", stage).get("deps", []):
            file = (dvc_yaml.parent / dep).resolve()
            if file.suffix == ".py" and file.is_relative_to(ROOT / "clip_study"):
                found.setdefault(file.relative_to(ROOT).as_posix(), []).append(name)
    return found


HEAVY = {"scan", "fetch", "extract", "generate", "pretrain"}  # what an edit must not rerun unless it is their code


@pytest.mark.parametrize("dvc_yaml", PIPELINES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_edit_of_the_evaluation_or_reporting_code_reruns_a_heavy_stage(dvc_yaml):
    rerun = stages_rerun_by(dvc_yaml)
    for module in LIBRARY:  # the map, shown with -s: what an edit to each module reruns
        name = module.relative_to(ROOT).as_posix()
        print(f"{dvc_yaml.relative_to(ROOT)}: {name} -> {', '.join(rerun.get(name, [])) or '(nothing)'}")
    for module, stages in rerun.items():
        if module.startswith(("clip_study/evaluation/", "clip_study/reporting/")):
            assert not HEAVY & set(stages), f"an edit to {module} reruns {sorted(HEAVY & set(stages))}"
    checks = {module.removeprefix("clip_study/pipeline/sections/").removesuffix(".py"): set(stages)
              for module, stages in rerun.items() if module.startswith("clip_study/pipeline/sections/")}
    reads = {"scan": {"datasets", "shifts", "captions"}, "fetch": {"datasets"}, "extract": {"models", "model", "extract"},
             "generate": {"generate"},
             "pretrain": {"pretrain"}}  # a heavy stage depends on the checks of the sections it reads, no other
    for stage, sections in reads.items():
        if stage in yaml.safe_load(dvc_yaml.read_text())["stages"]:
            assert {section for section, stages in checks.items() if stage in stages} == sections, stage
    assert {"zeroshot", "check"} <= checks["zeroshot"]


def test_the_import_walk_follows_function_level_imports_and_skips_type_hints():
    run = {file.relative_to(ROOT).as_posix() for file in files_run_by("stages.extract")}
    assert "clip_study/data/sources.py" not in run  # subset imports it for a type hint only
    assert {"stages/extract.py", "clip_study/models/pixels.py", "clip_study/data/images.py",
            "clip_study/hub.py"} <= run
    assert "clip_study.data.features" in imported_modules(ROOT / "clip_study" / "evaluation" / "logistic.py")


def test_every_stage_file_is_a_thin_entry_point_that_a_pipeline_runs():
    run = {module for dvc_yaml in PIPELINES for module, _ in stage_modules(dvc_yaml.read_text()).values()}
    for file in STAGES:
        tree = ast.parse(file.read_text())
        main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), None)
        assert module_name(file) in run, f"{file.name} is no stage of dvc.yaml or demo/dvc.yaml: move it to clip_study"
        assert main is not None and [arg.arg for arg in main.args.args] == ["argv"], file.name
        assert len(file.read_text().splitlines()) <= 120, f"{file.name} is over 120 lines: move logic to clip_study"


class Declared(Exception):
    """Raised in place of parsing a stage's arguments, once its options are recorded."""


def path_options(module_name_: str) -> dict[str, str | None]:
    """The path options a stage declares, each with its default ('': none; None: required), as its main passes
    them to parse_args (recorded there: nothing of the stage runs)."""
    import importlib

    module, declared = importlib.import_module(module_name_), {}

    def record(description, paths, argv=None, **per_entry):
        declared.update(paths)
        raise Declared

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "parse_args", record)
        with pytest.raises(Declared):
            module.main([])
    return declared


def commands(dvc_yaml: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(stage, module, {option: value}) of each stage command of ``dvc_yaml`` (a per-model value holds ${key})."""
    found = []
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        words = shlex.split(stage.get("do", stage)["cmd"])
        options = {word[2:].replace("-", "_"): value for word, value in zip(words, words[1:]) if word.startswith("--")}
        found.append((name, words[words.index("-m") + 1], options))
    return found


def declared_paths(dvc_yaml: Path) -> set[str]:
    """Every dep and output path ``dvc_yaml`` declares (relative to its folder)."""
    found = set()
    for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        body = stage.get("do", stage)
        for kind in ("deps", "outs", "metrics", "plots"):
            found |= {entry if isinstance(entry, str) else next(iter(entry)) for entry in body.get(kind, [])}
    return found


def test_every_stage_default_is_the_path_each_pipeline_passes_and_per_model_paths_are_required():
    """A stage run by hand with its defaults reads and writes what the pipelines do: a default is a path a
    dvc.yaml declares, equal to what every pipeline running the stage passes; a path that differs per model
    (``${key}``) has no default, and every required option is passed."""
    for dvc_yaml in PIPELINES:
        where, declared = dvc_yaml.relative_to(ROOT), declared_paths(dvc_yaml)
        for stage, module, passed in commands(dvc_yaml):
            for option, default in path_options(module).items():
                if default is None:
                    assert option in passed, f"{where}: {stage} must pass --{option} (required)"
                elif default:
                    assert passed.get(option, default) == default, \
                        f"{module} --{option} defaults to {default}, {where} passes {passed[option]}: " + \
                        ("make it required" if "${" in passed[option] else "make them one")
                    assert default in declared, f"{module} --{option} defaults to {default}, which {where} never names"


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


def changed_stages(demo: Path) -> dict[str, object]:
    """Stage -> what ``dvc status`` says changed in its deps, params or command; outputs and deps that are only
    missing (the data a fresh clone has not made yet) are left out."""
    status = json.loads(sh(demo, sys.executable, "-m", "dvc", "status", "--json").strip().splitlines()[-1])
    changed = {}
    for stage, entries in status.items():
        for entry in (e for e in entries if isinstance(e, dict)):
            deps = {os.path.relpath(path, demo): state for path, state in entry.get("changed deps", {}).items()
                    if state != "deleted"}
            deps |= {f"{key} (param)": state for key, state in entry.get("changed params", {}).items()}
            if deps or "changed command" in entry:
                changed[stage] = deps or "command"
    return changed


@pytest.mark.slow  # runs DVC in a project copy
def test_the_committed_demo_lock_records_the_code_and_params_in_the_tree(tmp_path):
    """demo/dvc.lock must be the record of a run of the committed code and params, so that a fresh clone
    sees the demo up to date (only its data, never committed, is missing) and its metrics are what this code
    makes. A code change without rerunning the demo fails here, naming the stage and the files."""
    repo = project_copy(tmp_path, *DEMO_FILES, "demo/dvc.lock")
    stale = changed_stages(repo / "demo")
    assert stale == {}, f"demo/dvc.lock does not record the code and params in the tree: {stale}; rerun the demo " \
                        "(cd demo && dvc repro) and commit demo/dvc.lock and demo/metrics"
    locked = set(yaml.safe_load((repo / "demo" / "dvc.lock").read_text())["stages"])
    declared = set(sh(repo / "demo", sys.executable, "-m", "dvc", "stage", "list", "--name-only").split())
    assert locked == declared, f"demo/dvc.lock records stages dvc.yaml no longer has: {sorted(locked - declared)}"


@pytest.mark.slow  # runs DVC in a project copy
@pytest.mark.parametrize("edited", ["clip_study/evaluation/calibration.py", "clip_study/pipeline/sections/zeroshot.py"])
def test_an_edit_to_the_calibration_or_the_zeroshot_checks_reruns_no_heavy_stage(tmp_path, edited):
    """What ``dvc status`` lists after an edit: the stages that score, never fetch, extract or pretraining."""
    repo = project_copy(tmp_path, *DEMO_FILES, "demo/dvc.lock")
    with open(repo / edited, "a") as file:
        file.write("\n# an edit\n")
    changed = changed_stages(repo / "demo")
    print(f"dvc status after an edit to {edited}: {sorted(changed)}")
    assert {f"zeroshot@{model}-{dataset}" for model in ("clip", "siglip") for dataset in ("shapes", "shape_only")} \
        <= set(changed)
    assert not {stage.split("@")[0] for stage in changed} & HEAVY, sorted(changed)


@pytest.mark.slow  # runs DVC in a project copy
@pytest.mark.parametrize("added", ["dataset", "model"])
def test_adding_a_dataset_or_a_model_reruns_its_own_stages_and_the_leaderboard_only(tmp_path, added):
    """A new entry of params datasets (or models) makes new stages of its own (fetch@<dataset>, every
    <stage>@<model>-<dataset> of it) and changes the leaderboard's params: nothing else of the demo reruns."""
    repo = project_copy(tmp_path, *DEMO_FILES, "demo/dvc.lock")
    params = yaml.safe_load((repo / "demo" / "params.yaml").read_text())
    if added == "dataset":
        new = "shapes_again"
        params["datasets"][new] = dict(params["datasets"]["shape_only"])
    else:
        new = "clip_again"  # the demo's checkpoints are data/checkpoints/<model>, made by pretrain@<model>
        params["models"][new] = {"name": f"data/checkpoints/{new}", "family": "hf_clip"}
    (repo / "demo" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(changed_stages(repo / "demo"))
    own = {stage for stage in changed
           if stage.split("@")[-1] == new or stage.endswith(f"-{new}") or stage.split("@")[-1].startswith(f"{new}-")}
    print(f"dvc status after adding {added} {new}: {sorted(changed)}")
    assert changed - own == {"leaderboard"}, sorted(changed - own)
    stages = {stage.split("@")[0] for stage in own}
    assert {"extract", "zeroshot", "probe", "logreg", "summary", "report"} <= stages
    assert ("fetch" in stages) == (added == "dataset") and ("pretrain" in stages) == (added == "model")


FITTING = {"zeroshot", "probe", "logreg", "fewshot", "zsinit", "wiseft"}  # the stages whose heads shift sets are scored with


def downstream(project: Path, stages: set[str]) -> set[str]:
    """``stages`` and every stage that depends on one of them, directly or not: what `dvc repro` reruns when their
    outputs change (DVC's own stage graph, whose edges point from a stage to the stages it depends on)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        graph = repo.index.graph
        found = {node for node in graph.nodes if node.addressing.split(":")[-1] in stages}
        return {node.addressing.split(":")[-1] for start in found for node in nx.ancestors(graph, start)} | stages


@pytest.mark.slow  # runs DVC in a project copy
def test_adding_or_changing_a_shift_set_reruns_its_extraction_and_scoring_never_a_fit(tmp_path):
    """A new shift set (and a change to one) reruns its own fetch_shift, extract_shift and shift stages and the
    leaderboard: no probe or any other classifier is fitted again, no dataset fetched or extracted again, no other
    shift set touched."""
    repo = project_copy(tmp_path, *DEMO_FILES, "demo/dvc.lock")
    params = yaml.safe_load((repo / "demo" / "params.yaml").read_text())
    assert set(params["shifts"]) == {"outline", "noisy", "small"}
    params["shifts"]["noisy_again"] = dict(params["shifts"]["noisy"], seed=1)  # a new shift set
    params["shifts"]["outline"]["max_per_class"] = 10  # a changed one
    (repo / "demo" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(changed_stages(repo / "demo"))
    new = {"fetch_shift@noisy_again"} | {f"{stage}@{model}-noisy_again" for stage in ("extract_shift", "shift")
                                         for model in ("clip", "siglip")}
    assert changed == new | {"fetch_shift@outline", "leaderboard"}, sorted(changed)
    reruns = downstream(repo / "demo", changed)
    print(f"dvc status after adding noisy_again and changing outline: {sorted(changed)}; reruns {sorted(reruns)}")
    assert reruns == new | {"leaderboard"} | {"fetch_shift@outline"} | {
        f"{stage}@{model}-outline" for stage in ("extract_shift", "shift") for model in ("clip", "siglip")}
    assert not {stage.split("@")[0] for stage in reruns} & (FITTING | HEAVY)


@pytest.mark.slow  # runs DVC in a project copy
def test_a_retrieval_prompt_sweep_reruns_the_caption_embeddings_and_scoring_never_an_image_encoding(tmp_path):
    """``dvc exp run -S retrieval.template=...`` changes embed_captions and retrieval (and the leaderboard) only: the
    images of the caption dataset are not encoded again, and nothing of classification reruns."""
    repo = project_copy(tmp_path, *DEMO_FILES, "demo/dvc.lock")
    params = yaml.safe_load((repo / "demo" / "params.yaml").read_text())
    params["retrieval"]["template"] = "a photo of {}"
    (repo / "demo" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(changed_stages(repo / "demo"))
    pairs = {f"{stage}@{model}-shape_captions" for stage in ("embed_captions", "retrieval")
             for model in ("clip", "siglip")}
    assert changed == pairs, sorted(changed)
    assert downstream(repo / "demo", changed) == pairs | {"leaderboard"}
