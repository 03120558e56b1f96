"""Every local path the params name (the dataset folder, the models' checkpoint directories, the class-names,
template and prompts files) checked by the check stage before any stage runs: one line each naming the key,
the path and the folder it is relative to; a path the pipeline writes may be absent; a value that may be a hub
id gives both readings, and the hub is never asked in offline mode."""

import os
import socket
import subprocess
import sys
import threading

import huggingface_hub.constants
import pytest

from clip_study import hub
from clip_study.pipeline import paths, schema
from clip_study.pipeline.keys import LocalPath
from clip_study.pipeline.schema import ALL_SECTIONS
from clip_study.pipeline.sections.datasets import DATASET_KEYS
from clip_study.pipeline.sections.models import MODEL_KEYS
from stages.check import declared_outputs
from tests.conftest import one_dataset
from tests.test_params_validation import DEMO, ROOT, edited, write

DEMO_DIR = ROOT / "demo"
HF_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
DATASET, MODEL = LocalPath("folder", hub="dataset"), LocalPath("folder", hub="model")
HUB_REACHABLE = hub.hub_reachable  # the real one: each test gets one that fails when called


@pytest.fixture(scope="module")
def demo_outputs() -> list[str]:
    """What the demo's stages write, as DVC lists it for the check stage."""
    cwd = os.getcwd()
    os.chdir(DEMO_DIR)
    try:
        return declared_outputs()
    finally:
        os.chdir(cwd)


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty local Hugging Face cache, offline mode on, and no network: a test that asks the hub fails."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(timeout: float = 3.0) -> bool:
        pytest.fail("the hub was asked in offline mode")

    monkeypatch.setattr(hub, "hub_reachable", no_network)
    return tmp_path / "hf"


def demo_problems(demo_outputs, monkeypatch, *changes) -> list[str]:
    """The problems of the demo's params with ``changes`` ((dotted key, value), ...), checked from demo/."""
    monkeypatch.chdir(DEMO_DIR)
    params = DEMO
    for dotted, value in changes:
        params = edited(params, dotted, value)
    return schema.problems(params, written=demo_outputs)


def test_the_demo_params_pass_with_what_the_demo_stages_write(demo_outputs, monkeypatch):
    assert demo_problems(demo_outputs, monkeypatch) == []


def test_the_check_stage_names_missing_dataset_folders_and_missing_model_folders(tmp_path):
    """From the demo's folder, as dvc repro runs it: dataset folders (of each dataset) and checkpoints no stage
    writes."""
    params = edited(edited(DEMO, "datasets.shapes.source", "data/my_images"), "datasets.shape_only.source",
                    "/nowhere/shape_only")
    params["models"]["clip"]["name"], params["models"]["siglip"]["name"] = "checkpoints/clip", "data/checkpoints/other"
    path = write(tmp_path, params)
    done = subprocess.run([sys.executable, "-m", "stages.check", "--params", str(path), "--out",
                           str(tmp_path / "checked.json")], cwd=DEMO_DIR, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 4, done.stderr
    dataset, second, clip, siglip = (line.removeprefix(f"error: {path}: ") for line in lines)
    assert dataset == (
        f"datasets.shapes.source: no such folder data/my_images (relative to {DEMO_DIR}), and dataset 'data/my_images' "
        "is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: download it once on a machine with "
        "network (`hf download data/my_images --repo-type dataset`, then copy ~/.cache/huggingface) or give the path "
        "of a local directory instead")
    assert second == "datasets.shape_only.source: no such folder /nowhere/shape_only: correct the path"
    assert clip.startswith(f"models.clip.name: no such folder checkpoints/clip (relative to {DEMO_DIR}), and model "
                           "'checkpoints/clip' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    assert siglip == f"models.siglip.name: no such folder data/checkpoints/other (relative to {DEMO_DIR}): correct the path"
    assert not (tmp_path / "checked.json").exists()


def test_paths_the_pipeline_writes_may_be_absent_and_existing_ones_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = edited(DEMO, "datasets.shapes.class_names", "data/shapes/names.tsv")
    params = edited(params, "datasets.shape_only.templates", "data/shape_only/templates.txt")
    params = edited(params, "zeroshot.ensembles", None)
    (tmp_path / "small_classes.tsv").write_text("red_circle\tred_circle\n")  # a file of the user's, beside the params
    named = ["datasets.shapes.source", "datasets.shapes.class_names", "datasets.shape_only.source",
             "datasets.shape_only.templates", "shifts.outline.source", "shifts.noisy.source", "shifts.small.source",
             "captions.shape_captions.source", "models.clip.name", "models.siglip.name"]
    assert [line.split(":")[0] for line in schema.problems(params, written=[])] == named
    folders = ("data/shapes", "data/shape_only", *(f"data/shift_sets/{name}" for name in ("outline", "noisy", "small")),
               "data/shape_captions", "data/checkpoints/clip", "data/checkpoints/siglip")
    written = [str(tmp_path / folder) for folder in folders]
    assert schema.problems(params, written=written) == []  # names.tsv and templates.txt too: inside an output
    for folder in folders:
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "data" / "shapes" / "names.tsv").write_text("red_circle\tred disc\n")
    (tmp_path / "data" / "shape_only" / "templates.txt").write_text("a photo of a {}\n")
    assert schema.problems(params, written=[]) == []


@pytest.mark.parametrize("dotted, value, expected", [
    ("datasets.shapes.class_names", "nowhere.tsv",
     "datasets.shapes.class_names: no such file nowhere.tsv (relative to {demo}): give a tsv of 'id<TAB>name' lines "
     "or null"),
    ("datasets.shapes.class_names", "/nowhere/names.tsv",
     "datasets.shapes.class_names: no such file /nowhere/names.tsv: give a tsv"),
    ("datasets.shapes.class_names", "metrics",
     "datasets.shapes.class_names: metrics is a folder, not a file: give a tsv"),
    ("datasets.shapes.templates", "nowhere.txt",
     "datasets.shapes.templates: no such file nowhere.txt (relative to {demo}): give a file of templates"),
    # every entry's paths are checked, the second dataset's too
    ("datasets.shape_only.class_names", "nowhere.tsv",
     "datasets.shape_only.class_names: no such file nowhere.tsv (relative to {demo}): give a tsv"),
    ("datasets.shape_only.templates", "metrics",
     "datasets.shape_only.templates: metrics is a folder, not a file: give a file of templates"),
    ("datasets.shape_only.source", "../README.md",
     "datasets.shape_only.source: ../README.md is a file, not a folder: correct the path"),
    ("zeroshot.class_prompts", "nowhere.json", "zeroshot.class_prompts: no such file nowhere.json (relative to {demo})"),
    ("zeroshot.ensembles", {"mine": "nowhere.txt", "inline": ["a {}"]},
     "zeroshot.ensembles.mine: no such file nowhere.txt (relative to {demo}): correct the path, or list the templates "
     "inline"),
    ("zeroshot.ensembles", {"clip_80": "stages/assets/clip_imagenet_templates.txt"},
     "zeroshot.ensembles.clip_80: no such file stages/assets/clip_imagenet_templates.txt (relative to {demo}): the "
     "shipped template files moved to clip_study/assets/; write clip_study/assets/clip_imagenet_templates.txt"),
    ("datasets.shapes.source", "../README.md",
     "datasets.shapes.source: ../README.md is a file, not a folder: correct the path"),
    ("datasets.shapes.source", "/nowhere/images", "datasets.shapes.source: no such folder /nowhere/images: correct the "
                                                  "path"),
])
def test_a_path_no_stage_writes_must_be_there(demo_outputs, monkeypatch, dotted, value, expected):
    found = demo_problems(demo_outputs, monkeypatch, (dotted, value))
    assert len(found) == 1 and found[0].startswith(expected.format(demo=DEMO_DIR)), found


def test_offline_a_hub_id_must_be_cached_and_the_hub_is_not_asked(tmp_path, monkeypatch, empty_hub_cache):
    monkeypatch.chdir(tmp_path)
    problem = paths.path_problem("datasets.tiny.source", "owner/TinySet", DATASET, [])
    assert problem.startswith(f"datasets.tiny.source: no such folder owner/TinySet (relative to {tmp_path}), and "
                              "dataset 'owner/TinySet' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    (empty_hub_cache / "datasets" / "owner___tiny_set").mkdir(parents=True)  # as datasets prepared it
    assert paths.path_problem("datasets.tiny.source", "owner/TinySet", DATASET, []) is None
    assert paths.path_problem("models.m.name", "owner/clip", MODEL, []) is not None
    (empty_hub_cache / "hub" / "models--owner--clip" / "snapshots" / "abc123").mkdir(parents=True)
    assert paths.path_problem("models.m.name", "owner/clip", MODEL, []) is None


@pytest.mark.parametrize("answers", [True, False])
def test_online_a_hub_id_not_cached_passes_when_the_hub_answers_within_the_check_timeout(tmp_path, monkeypatch,
                                                                                        answers):
    monkeypatch.chdir(tmp_path)
    for name in HF_OFFLINE:
        monkeypatch.delenv(name, raising=False)
    asked = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: asked.append(timeout) or answers)
    params = {"datasets": one_dataset("owner/images"),
              "models": {"a": {"name": "owner/clip"}, "b": {"name": "owner/siglip"}}}
    found = schema.problems(params, written=[])
    assert asked == [paths.HUB_TIMEOUT] and paths.HUB_TIMEOUT <= 1.0  # asked once, never for the hub's own timeout
    if answers:
        assert found == []  # fetch and extract download them
    else:
        assert [line.split(":")[0] for line in found] == ["datasets.shapes.source", "models.a.name", "models.b.name"]
        assert found[1].endswith("model 'owner/clip' is not in the local Hugging Face cache and the Hugging Face hub "
                                 "is unreachable: download it once on a machine with network (`hf download "
                                 "owner/clip`, then copy ~/.cache/huggingface) or give the path of a local directory "
                                 "instead")


def test_every_key_that_names_a_path_has_its_path_checked():
    """A key whose allowed values speak of a file, folder or directory declares its path check."""
    keys = {f"{section.name}.{key}": rule for section in ALL_SECTIONS for key, rule in section.keys.items()
            if not section.per_entry} | {f"models.<name>.{key}": rule for key, rule in MODEL_KEYS.items()} \
        | {f"datasets.<name>.{key}": rule for key, rule in DATASET_KEYS.items()}
    speaks_of_paths = {name for name, rule in keys.items()
                       if any(word in rule.allowed for word in ("file", "folder", "directory", "path"))}
    checked = {name for name, rule in keys.items() if rule.path is not None}
    assert speaks_of_paths == checked == {"datasets.<name>.source", "datasets.<name>.class_names",
                                          "datasets.<name>.templates", "models.<name>.name", "zeroshot.ensembles",
                                          "zeroshot.class_prompts"}


def test_a_hub_whose_name_lookup_hangs_is_unreachable_after_the_timeout(monkeypatch):
    """A resolver that never answers: the socket's own timeout leaves the lookup out, the probe does not."""
    released = threading.Event()

    def lookup_that_hangs(address, timeout=None):
        released.wait()
        raise OSError("no answer")

    monkeypatch.setattr(socket, "create_connection", lookup_that_hangs)
    try:
        assert HUB_REACHABLE(timeout=0.05) is False
    finally:
        released.set()  # the probe's thread ends
