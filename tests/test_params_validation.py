"""The params schema: a bad params file stops any stage before work, with one line naming the key,
the bad value and what is allowed (no model is loaded here: a few seconds in all)."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clip_study.errors import UserError
from clip_study.pipeline import schema

ROOT = Path(__file__).resolve().parents[1]
MAIN = yaml.safe_load((ROOT / "params.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "demo" / "params.yaml").read_text())
DROP = object()  # remove the key instead of setting it


@pytest.fixture(autouse=True)
def in_repository_root(monkeypatch):
    """Template files in params are paths from the folder where stages run: the root for params.yaml."""
    monkeypatch.chdir(ROOT)


def folder_of(base: dict) -> Path:
    """Where the stages reading ``base`` run: the demo is a DVC project of its own, in demo/."""
    return ROOT / "demo" if base is DEMO else ROOT


def edited(base: dict, dotted: str, value: object) -> dict:
    """A copy of ``base`` with ``section.key`` (or a whole ``section``) set to ``value`` or dropped."""
    params = copy.deepcopy(base)
    *path, last = dotted.split(".")
    target = params
    for part in path:
        target = target[part]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return params


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def load_error(tmp_path: Path, params: dict) -> str:
    path = write(tmp_path, params)
    with pytest.raises(UserError) as error:
        schema.check_file(path)
    lines = str(error.value).split("\n")  # one per problem
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return lines[0][len(f"{path}: "):]


# (params file, what to change, new value, the key the message must start with, a fragment of the message)
CASES = [
    (MAIN, "datasets.tiny_imagenet.test_size", 1.5, "datasets.tiny_imagenet.test_size", "1.5 must be a fraction between 0 and 1 (e.g. 0.2)"),
    (MAIN, "datasets.tiny_imagenet.test_size", 0, "datasets.tiny_imagenet.test_size", "0 must be a fraction between 0 and 1"),
    (MAIN, "datasets.tiny_imagenet.test_size", "0.2", "datasets.tiny_imagenet.test_size", "YAML read it as text: write 0.2"),
    (MAIN, "datasets.tiny_imagenet.seed", -1, "datasets.tiny_imagenet.seed", "-1 must be a whole number >= 0"),
    (MAIN, "datasets.tiny_imagenet.classes", 1, "datasets.tiny_imagenet.classes", "1 must be 'all', a number of classes >= 2, or a list of class ids"),
    (MAIN, "datasets.tiny_imagenet.classes", ["goldfish", "tabby cat", "goldfish"], "datasets.tiny_imagenet.classes",
     "'goldfish' is listed twice; list each class once"),
    (MAIN, "datasets.tiny_imagenet.classes", ["goldfish"], "datasets.tiny_imagenet.classes", "['goldfish'] lists 1 class(es); list at least 2"),
    (MAIN, "datasets.tiny_imagenet.classes", [1, 2], "datasets.tiny_imagenet.classes", "(quoted strings)"),
    (MAIN, "datasets.tiny_imagenet.max_per_class", 1, "datasets.tiny_imagenet.max_per_class", "1 must be null (all images) or a whole number >= 2"),
    (MAIN, "datasets.tiny_imagenet.on_bad_image", "ignore", "datasets.tiny_imagenet.on_bad_image", "'ignore' must be one of 'skip', 'fail'"),
    (MAIN, "datasets.tiny_imagenet.clases", "all", "datasets.tiny_imagenet.clases", "unknown key; did you mean datasets.tiny_imagenet.classes? (datasets.tiny_imagenet takes source, split"),
    (MAIN, "datasets.tiny_imagenet.source", DROP, "datasets.tiny_imagenet.source", "missing; add a hub dataset id"),
    (MAIN, "model.device", "gpu", "model.device",
     "'gpu' must be one of 'auto', 'cpu', 'cuda', 'mps' (or 'cuda:N'); did you mean 'cuda'?"),
    (MAIN, "model.device", "cdua", "model.device", "did you mean 'cuda'?"),
    (MAIN, "model.batch_size", 64, "model.batch_size",
     "unknown key; did you mean extract.batch_size or probe.batch_size"),
    (MAIN, "extract.batch_size", 0, "extract.batch_size", "0 must be a whole number >= 1"),
    (MAIN, "extract.workers", -1, "extract.workers", "-1 must be 'auto' or a whole number >= 0"),
    (MAIN, "extract.threads", 0, "extract.threads", "0 must be 'auto' or a whole number >= 1"),
    (MAIN, "extract.precision", "fp8", "extract.precision",
     "'fp8' must be one of 'auto', 'fp32', 'int8', 'fp16', 'bf16'"),
    (MAIN, "extract.shard_size", 2.5, "extract.shard_size", "2.5 must be a whole number >= 1"),
    (MAIN, "extract.engine", "spark", "extract.engine", "'spark' must be one of 'local', 'ray'"),
    (MAIN, "extract.engine", "Ray", "extract.engine", "did you mean 'ray'?"),
    (MAIN, "extract.ray_address", "head-node", "extract.ray_address",
     "'head-node' must be one of 'local', 'auto' or a cluster address ('host:port', 'ray://host:port')"),
    (MAIN, "extract.ray_actors", 0, "extract.ray_actors", "0 must be 'auto' or a whole number >= 1"),
    (MAIN, "zeroshot.templates", ["a photo of a cat"], "zeroshot.templates",
     "'a photo of a cat' must contain '{}' exactly once, where the class name goes"),
    (MAIN, "zeroshot.templates", ["{} or {}"], "zeroshot.templates", "'{} or {}' must contain '{}' exactly once"),
    (MAIN, "zeroshot.templates", ["a {}", "b {}", "a {}"], "zeroshot.templates", "'a {}' is given twice; keep one"),
    (MAIN, "zeroshot.templates", {"p": "a {}", "q": "a {}"}, "zeroshot.templates.q",
     "'a {}' is given twice (also zeroshot.templates.p); keep one"),
    (MAIN, "zeroshot.templates", {"a photo": "a photo of a {}"}, "zeroshot.templates",
     "key 'a photo' may only use letters, digits, '_' and '-'"),
    (MAIN, "zeroshot.templates", [], "zeroshot.templates", "[] must be a non-empty list of templates"),
    (MAIN, "zeroshot.ensembles", {"mine": 3}, "zeroshot.ensembles.mine",
     "3 must be a template file (one template a line) or a non-empty list of templates"),
    (MAIN, "zeroshot.ensembles", {"mine": ["a {}", "plain"]}, "zeroshot.ensembles.mine",
     "'plain' must contain '{}' exactly once"),
    (MAIN, "probe.epochs", 0, "probe.epochs", "0 must be a whole number >= 1"),
    (MAIN, "probe.epochs", 10.5, "probe.epochs", "10.5 must be a whole number >= 1"),
    (MAIN, "probe.lr", 0, "probe.lr", "0 must be a finite number > 0"),
    (MAIN, "probe.lr", "1e-4", "probe.lr", "'1e-4' must be a finite number > 0; YAML read it as text: write 0.0001"),
    (MAIN, "probe.batch_size", True, "probe.batch_size", "True must be a whole number >= 1"),
    (MAIN, "probe.weight_decay", -0.1, "probe.weight_decay", "-0.1 must be a finite number >= 0"),
    (MAIN, "probe.epoch", 10, "probe.epoch", "unknown key; did you mean probe.epochs?"),
    (MAIN, "probe.lr", DROP, "probe.lr", "missing; add a finite number > 0"),
    (MAIN, "logreg.C_min", 1e4, "logreg.C_min", "10000 must be <= logreg.C_max (1000); swap them"),
    (MAIN, "logreg.C_steps", 0, "logreg.C_steps", "0 must be a whole number >= 1"),
    (MAIN, "logreg.val_fraction", 1, "logreg.val_fraction", "1 must be a fraction between 0 and 1"),
    (MAIN, "logreg.c_max", 10.0, "logreg.c_max", "did you mean logreg.C_max?"),
    (MAIN, "fewshot.shots", [1, 0, 4], "fewshot.shots", "0 must be a whole number of images per class >= 1 (or 'all')"),
    (MAIN, "fewshot.shots", [1, 2, 2], "fewshot.shots", "2 is listed twice; list each k once"),
    (MAIN, "fewshot.shots", 4, "fewshot.shots", "4 must be a non-empty list of images per class"),
    (MAIN, "fewshot.seeds", 0, "fewshot.seeds", "0 must be a whole number >= 1"),
    (MAIN, "evaluation.resamples", 50, "evaluation.resamples", "50 must be a whole number >= 100"),
    (MAIN, "evaluation.confidence", 95, "evaluation.confidence", "95 must be a fraction between 0 and 1"),
    (MAIN, "evaluation.calibration_bins", 1, "evaluation.calibration_bins", "1 must be a whole number >= 2"),
    (MAIN, "evaluation.val_fraction", DROP, "evaluation.val_fraction", "missing; add a fraction between 0 and 1"),
    (MAIN, "probes", {"epochs": 10}, "probes", "unknown section; did you mean probe? (sections: datasets, shifts, captions, models, model"),
    # the models compared: short names that DVC stages, folders and metric keys can carry, each a checkpoint
    (MAIN, "model.name", "openai/clip-vit-base-patch32", "model.name", "the models compared are listed under "
     "'models' now, each by a short name: write 'models: {clip_b32: {name: openai/clip-vit-base-patch32}}'"),
    (MAIN, "datasets", {}, "datasets", "empty; list at least one, e.g. 'tiny_imagenet: {source:"),
    (MAIN, "datasets.tiny-imagenet", {"source": "x"}, "datasets.tiny-imagenet",
     "the short name must be a letter then up to 39 letters, digits or '_'"),
    (MAIN, "datasets.tiny_imagenet.templates", DROP, "datasets.tiny_imagenet.templates",
     "missing; add 'templates: null' (the default: DVC needs every key a stage declares)"),
    (MAIN, "models", {}, "models", "empty; list at least one, e.g. 'clip_b32: {name: openai/clip-vit-base-patch32}'"),
    (MAIN, "models", {"clip b32": {"name": "x"}}, "models.clip b32", "the short name must be a letter then"),
    (MAIN, "models", {"clip": "openai/clip-vit-base-patch32"}, "models.clip",
     "'openai/clip-vit-base-patch32' must be a mapping of its keys (name, family)"),
    (MAIN, "models", {"clip": {"name": "x", "family": "siglip"}}, "models.clip.family",
     "'siglip' must be one of 'auto', 'hf_clip', 'hf_siglip'; did you mean 'hf_siglip'?"),
    (MAIN, "models", {"clip": {"nmae": "x"}}, "models.clip.nmae", "unknown key; did you mean models.clip.name?"),
    (MAIN, "models", {"clip": {"family": "auto"}}, "models.clip.name", "missing; add a checkpoint"),
    (MAIN, "probe", None, "probe", "None must be a mapping of its keys (epochs, lr, batch_size"),
    (DEMO, "generate.held_out", 8, "generate.held_out", "8 must be a whole number >= 0 and <= 7"),
    (DEMO, "pretrain.vision_hidden", 130, "pretrain.vision_hidden", "130 must be divisible by pretrain.heads (4)"),
    (DEMO, "pretrain.batch_size", 1, "pretrain.batch_size", "1 must be a whole number >= 2"),
]


@pytest.mark.parametrize("base, dotted, value, key, fragment", CASES,
                         ids=[f"{case[1]}={'dropped' if case[2] is DROP else repr(case[2])}" for case in CASES])
def test_bad_params_name_the_key_the_value_and_what_is_allowed(tmp_path, monkeypatch, base, dotted, value, key,
                                                              fragment):
    monkeypatch.chdir(folder_of(base))
    message = load_error(tmp_path, edited(base, dotted, value))
    assert message.startswith(f"{key}: "), message
    assert fragment in message, message


@pytest.mark.parametrize("path", ["params.yaml", "demo/params.yaml"])
def test_committed_params_are_valid(monkeypatch, path):
    monkeypatch.chdir((ROOT / path).parent)
    assert schema.problems(yaml.safe_load((ROOT / path).read_text())) == []
    assert schema.check_file(ROOT / path)


def test_new_and_optional_keys_are_accepted(tmp_path):
    params = copy.deepcopy(MAIN)
    params["extract"].update(workers="auto", threads=2, precision="int8", shard_size=512)
    params["datasets"]["tiny_imagenet"].update(on_bad_image="fail", classes=["goldfish", "tabby cat"], max_per_class=50)
    params["model"]["device"] = "cuda:1"
    params["zeroshot"].update(templates={"photo": "a photo of a {}"}, ensembles={"mine": ["a {}", "the {}"]})
    params["fewshot"]["shots"] = [1, 2, "all"]
    assert schema.check_file(write(tmp_path, params)) == params
    minimal = {"models": {"clip_b32": {"name": "openai/clip-vit-base-patch32"}}, "extract": {"batch_size": 8},
               "zeroshot": {"templates": ["a {}"]}}
    assert schema.check_file(write(tmp_path, minimal)) == minimal


THREE_PROBLEMS = ["datasets.shapes.clases: unknown key; did you mean datasets.shapes.classes?", "probe.epochs: 0 must be a whole number >= 1",
                  "logreg.seed: -1 must be a whole number >= 0"]


def three_problems() -> dict:
    return edited(edited(edited(DEMO, "datasets.shapes.clases", "all"), "probe.epochs", 0), "logreg.seed", -1)


def test_every_problem_of_a_file_is_listed_one_line_each_in_file_order(tmp_path, monkeypatch):
    monkeypatch.chdir(folder_of(DEMO))
    path = write(tmp_path, three_problems())
    with pytest.raises(UserError) as error:
        schema.check_file(path)
    lines = str(error.value).split("\n")
    assert len(lines) == 3
    for line, problem in zip(lines, THREE_PROBLEMS):
        assert line.startswith(f"{path}: {problem}"), line


def test_the_check_stage_prints_every_problem_as_an_error_line(tmp_path):
    done = run_stage(tmp_path, "check", three_problems(), "--out", str(tmp_path / "checked.json"), cwd=folder_of(DEMO))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    for line, problem in zip(lines, THREE_PROBLEMS):
        assert line.startswith(f"error: {tmp_path / 'params.yaml'}: {problem}"), line
    assert not (tmp_path / "checked.json").exists()


@pytest.mark.parametrize("text, message", [
    ("probe:\n  epochs: 1\n  epochs: 2\n",
     "probe.epochs: written twice (lines 2 and 3); keep one, yaml would silently use the last"),
    ("zeroshot:\n  templates:\n    a: 'x {}'\n    a: 'y {}'\n", "zeroshot.templates.a: written twice (lines 3 and 4)"),
    ("probe:\n  epochs: [1\n", "not valid YAML: expected ',' or ']', but got '<stream end>' at line 3, column 1"),
])
def test_yaml_slips_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        schema.check_file(path)
    assert str(error.value).startswith(f"{path}: {message}") and "\n" not in str(error.value)


def run_stage(tmp_path: Path, stage: str, params: dict, *args: str, cwd: Path = ROOT):
    path = write(tmp_path, params)
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", str(path), *args],
                          cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("stage, dotted, value, expected", [
    ("fetch", "datasets.shapes.clases", 5, "datasets.shapes.clases: unknown key; did you mean datasets.shapes.classes?"),
    ("check", "probe.lr", -1, "probe.lr: -1 must be a finite number > 0"),  # check: the whole file, first
    ("generate", "generate.image_size", 4, "generate.image_size: 4 must be a whole number >= 8"),
])
def test_a_stage_exits_2_with_one_line_before_any_work(tmp_path, stage, dotted, value, expected):
    out = tmp_path / "out"
    args = (["--out", str(out / "checked.json")] if stage == "check" else
            ["--out", str(out), "--templates", str(out / "t.json"), "--metrics", str(out / "m.json")] if stage == "fetch"
            else [
        "--pretrain", str(out / "p.npz"), "--images", str(out / "shapes"), "--held-out", str(out / "h.json")])
    done = run_stage(tmp_path, stage, edited(DEMO, dotted, value), *args, cwd=folder_of(DEMO))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'params.yaml'}: {expected}"), done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_verbose_shows_the_traceback(tmp_path):
    done = run_stage(tmp_path, "fetch", edited(MAIN, "datasets.tiny_imagenet.test_size", 2), "--out", str(tmp_path / "out"),
                     "--templates", str(tmp_path / "t.json"), "--metrics", str(tmp_path / "m.json"), "--verbose")
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert "clip_study.errors.UserError" in done.stderr and "datasets.tiny_imagenet.test_size: 2 must be" in done.stderr


def test_a_params_file_of_before_with_a_data_section_is_told_how_to_write_it(tmp_path):
    params = copy.deepcopy(MAIN)
    params = {"data": {"dataset": "zh-plus/tiny-imagenet", "split": "valid"},
              **{name: value for name, value in params.items() if name != "datasets"}}
    message = load_error(tmp_path, params)
    assert message.startswith("data: the data section is now one entry of datasets: write 'datasets: {<short name>: "
                              "{source: <data.dataset>, split: ..."), message
    assert "docs/params.md#datasets" in message and "\n" not in message
