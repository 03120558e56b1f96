"""Damaged inputs, tried as a user meets them: files a user names (params, class names, templates, per-class
prompts) in another encoding or malformed, checkpoints that are incomplete or damaged, and the files one
stage hands the next, edited, truncated or deleted. Each must stop its stage with exit code 2 and exactly
one `error:` line naming the file and the fix, no traceback, and no metrics file written."""

import contextlib
import importlib
import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from clip_study.data.features import load_splits
from clip_study.demo import tinyclip
from clip_study.evaluation.heads import load_heads
from clip_study.evaluation.similarity import l2_normalize
from clip_study.files import load_npz
from clip_study.pipeline import stage as stage_entry
from stages import extract, fetch, fewshot, logreg, probe, similarity, zeroshot
from tests.conftest import one_dataset, shape_prompts

ROOT = Path(__file__).resolve().parents[1]
REBUILD = "rebuild it with `dvc repro --force --single-item {}`"


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_clip_dir, shape_folder) -> Path:
    """A small study run stage by stage (6 classes, the tiny model): every file a later stage reads."""
    folder = tmp_path_factory.mktemp("study")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = one_dataset(str(shape_folder), classes=6, test_size=0.5)
    params["models"] = {"clip": {"name": str(tiny_clip_dir)}}
    params["model"]["device"] = "cpu"
    params["extract"]["batch_size"] = 8
    params["probe"].update(epochs=2, lr=0.01)
    params["logreg"]["val_fraction"] = 0.5
    params["evaluation"].update(val_fraction=0.5, resamples=200)
    params["fewshot"].update(shots=[1], seeds=1)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(ROOT)  # template files in params are paths from the repository root
    try:
        for main, args in STAGES.items():
            main.main([arg.format(s=folder) for arg in args])
    finally:
        os.chdir(cwd)
    return folder


P = "--params={s}/params.yaml"
STAGES = {  # the stages that make the study, in order, with their arguments ({s}: the study folder)
    fetch: [P, "--out={s}/subset", "--templates={s}/templates.json", "--metrics={s}/metrics/fetch.json"],
    extract: [P, "--subset={s}/subset", "--out={s}/features"],
    zeroshot: [P, "--subset={s}/subset", "--own-templates={s}/templates.json", "--features={s}/features",
               "--out={s}/zeroshot",
               "--metrics={s}/metrics/zeroshot.json", "--confusion={s}/metrics/confusion_zeroshot.json",
               "--heads={s}/heads/zeroshot.npz"],
    similarity: [P, "--features={s}/features", "--zeroshot={s}/zeroshot",
                 "--zeroshot-metrics={s}/metrics/zeroshot.json", "--metrics={s}/metrics/similarity.json"],
    probe: [P, "--subset={s}/subset", "--features={s}/features", "--out={s}/probe", "--metrics={s}/metrics/probe.json",
            "--curve={s}/metrics/probe_curve.json", "--confusion={s}/metrics/confusion_probe.json",
            "--heads={s}/heads/probe.npz"],
    logreg: [P, "--features={s}/features", "--subset={s}/subset", "--out={s}/logreg",
             "--metrics={s}/metrics/logreg.json", "--sweep={s}/metrics/logreg_sweep.json",
             "--confusion={s}/metrics/confusion_logreg.json", "--heads={s}/heads/logreg.npz"],
    fewshot: [P, "--features={s}/features", "--logreg-metrics={s}/metrics/logreg.json",
              "--metrics={s}/metrics/fewshot.json", "--curve={s}/metrics/fewshot_curve.json",
              "--heads={s}/heads/fewshot.npz"],
}
# a stage run again on a damaged copy writes to new paths, so that "no metrics file written" can be checked
RERUN = {
    "fetch": [P, "--out={s}/again/subset", "--templates={s}/again/templates.json", "--metrics={s}/again/fetch.json"],
    "extract": [P, "--subset={s}/subset", "--out={s}/again/features"],
    "zeroshot": [P, "--subset={s}/subset", "--own-templates={s}/templates.json", "--features={s}/features",
                 "--out={s}/again/zeroshot",
                 "--metrics={s}/again/zeroshot.json", "--confusion={s}/again/confusion.json",
                 "--heads={s}/again/heads/zeroshot.npz"],
    "similarity": [P, "--features={s}/features", "--zeroshot={s}/zeroshot",
                   "--zeroshot-metrics={s}/metrics/zeroshot.json", "--metrics={s}/again/similarity.json"],
    "probe": [P, "--subset={s}/subset", "--features={s}/features", "--out={s}/again/probe",
              "--metrics={s}/again/probe.json",
              "--curve={s}/again/curve.json", "--confusion={s}/again/confusion.json",
              "--heads={s}/again/heads/probe.npz"],
    "fewshot": [P, "--features={s}/features", "--logreg-metrics={s}/metrics/logreg.json",
                "--metrics={s}/again/fewshot.json", "--curve={s}/again/curve.json",
                "--heads={s}/again/heads/fewshot.npz"],
    "summary": ["--zeroshot={s}/metrics/zeroshot.json", "--similarity={s}/metrics/similarity.json",
                "--probe={s}/metrics/probe.json", "--logreg={s}/metrics/logreg.json",
                "--fewshot={s}/metrics/fewshot.json", "--zeroshot-predictions={s}/zeroshot/test_predictions.npz",
                "--probe-predictions={s}/probe/test_predictions.npz",
                "--logreg-predictions={s}/logreg/test_predictions.npz", "--out={s}/again/summary.json",
                "--paired={s}/again/paired.json", "--table={s}/again/summary.md"],
    "report": ["--metrics-dir={s}/metrics", "--out={s}/again/report.md", "--figures={s}/again/figures",
               "--per-class={s}/again/per_class.json"],
}


def run_damaged(study: Path, tmp_path: Path, stage: str, damage, fragments: list[str] = (),
                env: dict | None = None) -> str:
    """Copy the study, damage the copy, rerun ``stage`` on it, in this process as ``python -m stages.<stage>``
    runs it (``stage.run``: a UserError becomes one line on stderr and exit code 2; any other exception fails
    the test with its traceback); its one error line (study paths made relative), checked to hold ``fragments``."""
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    damage(copy)
    stderr, cwd = io.StringIO(), os.getcwd()
    os.chdir(ROOT)  # as the subprocess would: template files in params are paths from the repository root
    try:
        with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1", **(env or {})}), \
                contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exited:
            stage_entry.run(importlib.import_module(f"stages.{stage}").main,
                            [arg.format(s=copy) for arg in RERUN[stage]])
    finally:
        os.chdir(cwd)
    done = SimpleNamespace(returncode=exited.value.code, stderr=stderr.getvalue())
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    written = [path for path in (copy / "again").rglob("*") if path.is_file()] if (copy / "again").exists() else []
    assert written == [], f"{stage} wrote {written} before failing"
    line = errors[0].removeprefix("error: ").replace(str(copy) + "/", "")
    for fragment in fragments:
        assert fragment in line, line
    return line


def set_param(copy: Path, dotted: str, value) -> None:
    """Set ``section.key`` (or ``models.clip.name``) in the study copy's params.yaml."""
    params = yaml.safe_load((copy / "params.yaml").read_text())
    *path, key = dotted.split(".")
    target = params
    for part in path:
        target = target[part]
    target[key] = value
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write(name: str, content: bytes | str):
    def damage(copy: Path) -> None:
        path = copy / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return damage


def with_file(key: str, name: str, content: bytes | str):
    """Write ``name`` into the study copy and point params ``key`` (section.key) at it."""
    def damage(copy: Path) -> None:
        write(name, content)(copy)
        set_param(copy, key, str(copy / name))
    return damage


def with_ensemble(content: bytes):
    """A template file ``mine.txt`` named by params as the only ensemble."""
    def damage(copy: Path) -> None:
        write("mine.txt", content)(copy)
        set_param(copy, "zeroshot.ensembles", {"mine": str(copy / "mine.txt")})
    return damage


def truncate(name: str, keep: float = 0.5):
    def damage(copy: Path) -> None:
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[:int(len(data) * keep)])
    return damage


def delete(name: str):
    return lambda copy: (copy / name).unlink()


def edit_json(name: str, change):
    def damage(copy: Path) -> None:
        data = json.loads((copy / name).read_text())
        (copy / name).write_text(json.dumps(change(data)))
    return damage


def edit_npz(name: str, change):
    def damage(copy: Path) -> None:
        with np.load(copy / name) as npz:
            arrays = {key: npz[key] for key in npz.files}
        change(arrays)
        np.savez(copy / name, **arrays)
    return damage


def without(key: str):
    return lambda data: {k: v for k, v in data.items() if k != key}


PARAMS_YAML = (ROOT / "params.yaml").read_text()

USER_FILES = [  # (stage, damage, fragments of the error line)
    ("fetch", write("params.yaml", PARAMS_YAML.encode("utf-16")),
     ["params.yaml: is UTF-16 text, not UTF-8; save it as UTF-8"]),
    ("zeroshot", write("params.yaml", PARAMS_YAML.replace("a picture of a {}", "un café {}").encode("latin-1")),
     ["params.yaml: is not UTF-8 text (byte 0xe9 at line", "save it as UTF-8"]),
    ("probe", write("params.yaml", "- probe\n- epochs\n"), ["params.yaml must be a mapping of sections, got list"]),
    ("probe", write("params.yaml", "probe:\n  epochs: [10\n"), ["params.yaml: not valid YAML: expected ',' or ']'"]),
    ("fetch", with_file("datasets.shapes.class_names", "names.tsv", "red_circle\tcercle rouge\n".encode("latin-1")
                        + "blue_star\tétoile bleue\n".encode("latin-1")),
     ["datasets.shapes.class_names: names.tsv: is not UTF-8 text (byte 0xe9 at line 2, column 11); save it as UTF-8"]),
    ("fetch", with_file("datasets.shapes.class_names", "names.tsv", "red_circle\tred disc\nblue_star\tblue\tstar\n"),
     ["datasets.shapes.class_names: names.tsv: line 2 has 3 field(s), not 2; write 2 fields a line, separated by a tab"]),
    ("fetch", with_file("datasets.shapes.class_names", "names.tsv", "red_circle\tred disc\n".encode("utf-16")),
     ["names.tsv: is UTF-16 text, not UTF-8"]),
    ("zeroshot", with_ensemble("a photo of a {}\nune photo d'un {} \xe0 la plage\n".encode("latin-1")),
     ["zeroshot.ensembles.mine: mine.txt: is not UTF-8 text (byte 0xe0 at line 2, column 19)"]),
    ("zeroshot", with_ensemble(b"\n\n"),
     ["zeroshot.ensembles.mine: file", "mine.txt holds no templates"]),
    ("zeroshot", with_file("zeroshot.class_prompts", "prompts.json", '{"red circle": ["a red circle",]}'),
     ["zeroshot.class_prompts: prompts.json: is not valid JSON (line 1, column 32: Expecting value); "
      "correct the JSON"]),
    ("zeroshot", with_file("zeroshot.class_prompts", "prompts.json", '[["a red circle"]]'),
     ["zeroshot.class_prompts: prompts.json: holds a list [...], not an object {...}"]),
    ("zeroshot", with_file("zeroshot.class_prompts", "prompts.json", '{"red_circle": "a red circle"}'),
     ["zeroshot.class_prompts: no prompts for"]),
]


@pytest.mark.parametrize("stage, damage, fragments", USER_FILES, ids=[f"{c[0]}-{c[2][0][:40]}" for c in USER_FILES])
def test_a_damaged_user_file_is_one_line_naming_it(study, tmp_path, stage, damage, fragments):
    run_damaged(study, tmp_path, stage, damage, fragments)


def test_per_class_prompts_that_are_no_list_of_texts(study, tmp_path):
    classes = json.loads((study / "subset" / "classes.json").read_text())
    prompts = {c["id"]: [f"a {c['name']}"] for c in classes} | {classes[1]["id"]: f"a {classes[1]['name']}"}
    damage = with_file("zeroshot.class_prompts", "prompts.json", json.dumps(prompts))
    line = run_damaged(study, tmp_path, "zeroshot", damage)
    assert line.startswith(f"zeroshot.class_prompts: the prompts of {classes[1]['name']!r} are 'a ") and \
        "not a list of texts" in line, line


def damaged_checkpoint(change):
    """Point the model's name at a damaged copy of the study's checkpoint."""
    def damage(copy: Path) -> None:
        shutil.copytree(yaml.safe_load((copy / "params.yaml").read_text())["models"]["clip"]["name"], copy / "model")
        change(copy / "model")
        set_param(copy, "models.clip.name", str(copy / "model"))
    return damage


def edit_weights(change):
    def damage(model: Path) -> None:
        tensors = load_file(model / "model.safetensors")
        change(tensors)
        save_file(tensors, model / "model.safetensors", metadata={"format": "pt"})
    return damage


def foreign_tokenizer(model: Path) -> None:
    """Another model's tokenizer, with a vocabulary the study's model has no embeddings for."""
    words = [f"word{i} thing{i * 7} item{i * 13}" for i in range(400)]
    tokenizer = tinyclip.train_tokenizer(words + shape_prompts(), vocab_size=1500)
    (model / "tokenizer.json").unlink()
    tokenizer.save_pretrained(model)


def positions(model: Path, count: int) -> None:
    config = json.loads((model / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = count
    (model / "config.json").write_text(json.dumps(config))
    edit_weights(lambda t: t.__setitem__("text_model.embeddings.position_embedding.weight",
                                         t["text_model.embeddings.position_embedding.weight"][:count].clone()))(model)


def nested_image_processor(settings: bytes):
    """The image processor's settings as transformers 5.x's processors save them: only in processor_config.json,
    under 'image_processor'."""
    def damage(model: Path) -> None:
        (model / "preprocessor_config.json").unlink()
        (model / "processor_config.json").write_bytes(b'{"image_processor": ' + settings + b'}')
    return damage


def nan_weight(tensors):
    tensors["visual_projection.weight"][0, 0] = float("nan")


CHECKPOINTS = [  # (stage, damage to the checkpoint directory, fragments of the error line)
    ("zeroshot", lambda m: [(m / f).unlink() for f in ("tokenizer.json", "tokenizer_config.json")],
     ["models.clip.name: model has no tokenizer (tokenizer.json or vocab.json and merges.txt); a checkpoint directory "
      "needs"]),
    ("zeroshot", lambda m: truncate("tokenizer.json")(m),
     ["models.clip.name: model/tokenizer.json: is not valid JSON (line",
      "save the checkpoint again (save_pretrained)"]),
    ("zeroshot", foreign_tokenizer, ["the tokenizer has", "tokens for a model with", "token embeddings: its files are"
                                     " missing, damaged or from another model"]),
    ("extract", lambda m: (m / "config.json").unlink(), ["models.clip.name: model has no config (config.json)"]),
    ("extract", lambda m: write("config.json", '{"model_type": "clip",')(m),
     ["models.clip.name: model/config.json: is not valid JSON (line 1, column 23"]),
    ("extract", lambda m: (m / "model.safetensors").unlink(),
     ["models.clip.name: model has no weights (model.safetensors or model.safetensors.index.json or "
      "pytorch_model.bin"]),
    ("extract", lambda m: truncate("model.safetensors", 0.9)(m),
     ["models.clip.name: model/model.safetensors: is damaged (Error while deserializing header"]),
    ("extract", edit_weights(lambda t: t.pop("text_model.encoder.layers.0.layer_norm2.bias")),
     ["models.clip.name: model: its weights lack 1 tensor(s) of its architecture (e.g. "
      "text_model.encoder.layers.0.layer_norm2.bias), which would start random"]),
    ("extract", edit_weights(nan_weight),
     ["models.clip.name: model: weight visual_projection.weight holds NaN or infinite values"]),
    ("extract", lambda m: (m / "preprocessor_config.json").unlink(),
     ["models.clip.name: model has no image processor (preprocessor_config.json or processor_config.json holding "
      "'image_processor')"]),
    ("extract", lambda m: write("preprocessor_config.json", b'{"crop_size": "\xe9"}')(m),
     ["model/preprocessor_config.json: is not UTF-8 text (byte 0xe9 at line 1, column 16)"]),
    ("extract", nested_image_processor(b'{"crop_size": "\xe9"}'),
     ["model/processor_config.json: is not UTF-8 text (byte 0xe9 at line 1, column 36)"]),
    ("zeroshot", lambda m: positions(m, 12),
     ["template '", "': the prompts of '", "reach the model as the same tokens: the model's 12 text positions cut "
      "the class names off, or the tokenizer cannot tell them apart"]),
]


@pytest.mark.parametrize("stage, change, fragments", CHECKPOINTS, ids=[c[2][0][:50] for c in CHECKPOINTS])
def test_a_damaged_checkpoint_is_one_line_never_a_result(study, tmp_path, stage, change, fragments):
    run_damaged(study, tmp_path, stage, damaged_checkpoint(change), fragments)


def drop_best_text_features(copy: Path) -> None:
    best = json.loads((copy / "metrics" / "zeroshot.json").read_text())["best"]
    edit_npz("zeroshot/text_features.npz", lambda arrays: arrays.pop(best))(copy)


def classes_json(data):
    return {"classes": data}


STAGE_FILES = [  # (stage, damage, fragments of the error line)
    ("extract", delete("subset/test.csv"), ["subset/test.csv: not found; " + REBUILD.format("fetch")]),
    ("extract", write("subset/test.csv", "file,label\nimages/test/000000.png,1\nimages/test/000001.png\n"),
     ["subset/test.csv: line 3 has 1 field(s), not 2; " + REBUILD.format("fetch")]),
    ("extract", write("subset/test.csv", "file,label\nimages/test/000000.png,1\nimages/test/000001.png,seven\n"),
     ["subset/test.csv: line 3: label 'seven' is not a class index 0..5; " + REBUILD.format("fetch")]),
    ("extract", write("subset/train.csv", "path,class\n"),
     ["subset/train.csv: has no column 'file' (its header: path,class)"]),
    ("extract", delete("subset/images/test/000003.png"),
     ["subset/images/test/000003.png: not found (listed in", "test.csv); " + REBUILD.format("fetch")]),
    ("zeroshot", truncate("subset/classes.json"), ["subset/classes.json: is not valid JSON (line",
                                                   REBUILD.format("fetch")]),
    ("zeroshot", edit_json("subset/classes.json", classes_json),
     ["subset/classes.json: holds an object {...}, not a list [...]; " + REBUILD.format("fetch")]),
    ("zeroshot", truncate("features/test.npz"), ["features/test.npz: is not a readable npz file (",
                                                 REBUILD.format("extract")]),
    ("probe", delete("features/train.npz"), ["features/train.npz: not found; " + REBUILD.format("extract")]),
    ("probe", edit_npz("features/test.npz", lambda a: a.pop("labels")),
     ["features/test.npz: has no array 'labels'; " + REBUILD.format("extract")]),
    ("similarity", edit_npz("features/test.npz", lambda a: a["features"].__setitem__((2, 3), np.nan)),
     ["features/test.npz: holds non-finite features (row 2); " + REBUILD.format("extract")]),
    ("probe", edit_npz("features/test.npz", lambda a: a["labels"].__setitem__(0, 9)),
     ["features/test.npz: has label 9, beyond the 6 classes of the subset; " + REBUILD.format("extract")]),
    ("similarity", truncate("metrics/zeroshot.json"), ["metrics/zeroshot.json: is not valid JSON (line",
                                                       REBUILD.format("zeroshot")]),
    ("similarity", edit_json("metrics/zeroshot.json", without("best")),
     ["metrics/zeroshot.json: has no field 'best'; " + REBUILD.format("zeroshot")]),
    ("similarity", drop_best_text_features, ["zeroshot/text_features.npz: has no array",
                                              REBUILD.format("zeroshot")]),
    ("fewshot", edit_json("metrics/logreg.json", without("C")),
     ["metrics/logreg.json: has no field 'C'; " + REBUILD.format("logreg")]),
    ("fewshot", edit_json("metrics/logreg.json", lambda d: {**d, "C": "strong"}),
     ["metrics/logreg.json: 'C' is 'strong', not a number > 0; " + REBUILD.format("logreg")]),
    ("summary", edit_json("metrics/probe.json", without("chosen_epoch")),
     ["metrics/probe.json: has no field 'chosen_epoch'; " + REBUILD.format("probe")]),
    ("summary", truncate("probe/test_predictions.npz"),
     ["probe/test_predictions.npz: is not a readable npz file", REBUILD.format("probe")]),
    ("report", truncate("metrics/similarity.json"), ["metrics/similarity.json: is not valid JSON (line",
                                                     REBUILD.format("similarity")]),
    ("report", edit_json("metrics/confusion_zeroshot.json", classes_json),
     ["metrics/confusion_zeroshot.json: holds an object {...}, not a list [...]; " + REBUILD.format("zeroshot")]),
    ("report", delete("metrics/probe_curve.json"), ["metrics/probe_curve.json: not found; " + REBUILD.format("probe")]),
]


@pytest.mark.parametrize("stage, damage, fragments", STAGE_FILES, ids=[f"{c[0]}-{c[2][0][:45]}" for c in STAGE_FILES])
def test_a_damaged_file_from_another_stage_names_the_stage_that_rebuilds_it(study, tmp_path, stage, damage, fragments):
    run_damaged(study, tmp_path, stage, damage, fragments)


def test_the_rebuild_command_names_the_pipeline_dvc_runs(study, tmp_path):
    """Run by DVC from demo/dvc.yaml, the hint names that file's stage."""
    line = run_damaged(study, tmp_path, "similarity", truncate("metrics/zeroshot.json"),
                       env={"DVC_STAGE": "demo/dvc.yaml:similarity@clip-shape_only"})
    assert line.endswith("; " + REBUILD.format("demo/dvc.yaml:zeroshot@clip-shape_only")), line
    line = run_damaged(study, tmp_path / "again", "probe", delete("subset/classes.json"),
                       env={"DVC_STAGE": "demo/dvc.yaml:probe@clip-shape_only"})
    assert line.endswith("; " + REBUILD.format("demo/dvc.yaml:fetch@shape_only")), line


def test_the_study_itself_is_sound(study):
    """The undamaged study that every case above starts from runs through: the damage is what fails."""
    assert json.loads((study / "metrics" / "fewshot.json").read_text())["curve"][-1]["label"] == "all"
    assert torch.from_numpy(np.load(study / "features" / "test.npz")["features"]).isfinite().all()


def test_each_heads_file_gives_the_test_predictions_its_stage_saved(study):
    """The heads a stage saves score the test features alone (no model, no refit) into exactly the predictions the
    stage made itself: what lets a shift set be scored by them."""
    _, (test_x, test_y) = load_splits(study / "features")
    heads = {name: load_heads(study / "heads" / f"{name}.npz") for name in ("zeroshot", "probe", "logreg", "fewshot")}
    for saved in heads.values():
        np.testing.assert_array_equal(saved.labels, test_y)
        for head, predicted in zip(saved.heads, saved.predictions):
            np.testing.assert_array_equal(head.predict(test_x), predicted)

    metrics = json.loads((study / "metrics" / "zeroshot.json").read_text())
    keys = [*metrics["templates"], *metrics["ensembles"]]
    assert heads["zeroshot"].info == [{"name": f"zeroshot/{key}", "classifier": "zeroshot", "key": key,
                                       "chosen": key == metrics["best"]} for key in keys]
    stage_predictions, text = (load_npz(study / "zeroshot" / name) for name in ("test_predictions.npz",
                                                                                "text_features.npz"))
    for key, head, predicted in zip(keys, heads["zeroshot"].heads, heads["zeroshot"].predictions):
        np.testing.assert_array_equal(predicted, stage_predictions[key])
        assert head.normalize and (head.bias == np.float32(metrics["logit_bias"])).all()
        np.testing.assert_allclose(head.weights, metrics["logit_scale"] * l2_normalize(text[key]), rtol=1e-5, atol=1e-6)

    probe = json.loads((study / "metrics" / "probe.json").read_text())
    assert heads["probe"].info == [{"name": "probe", "classifier": "probe", "epoch": probe["chosen_epoch"]}]
    assert not heads["probe"].heads[0].normalize
    np.testing.assert_array_equal(heads["probe"].predictions[0],
                                  load_npz(study / "probe" / "test_predictions.npz")["chosen"])
    logreg = load_npz(study / "logreg" / "test_predictions.npz")
    assert heads["logreg"].info[0]["name"] == "logreg"
    np.testing.assert_array_equal(heads["logreg"].predictions[0], logreg["chosen"])
    assert [entry["name"] for entry in heads["fewshot"].info] == ["fewshot/k=1/seed=0", "fewshot/k=all/seed=0"]


def test_the_fallback_tokenizer_of_a_checkpoint_without_tokenizer_files_never_encodes(tiny_clip_dir, tmp_path):
    """transformers builds a near-empty tokenizer when the files are missing: every prompt then encodes alike,
    and zero-shot would still report a top-1. Used directly (not through load_tokenizer), it is refused too."""
    from transformers import AutoTokenizer

    from clip_study.errors import UserError
    from clip_study.models.encoding import encode_texts
    from clip_study.models.loading import load_model

    bare = tmp_path / "bare"
    shutil.copytree(tiny_clip_dir, bare)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bare / name).unlink()
    fallback = AutoTokenizer.from_pretrained(bare)
    assert len(fallback) < 10
    assert {len(set(fallback(text)["input_ids"][1:])) for text in ("a red circle", "a blue star")} == {1}  # one id
    with pytest.raises(UserError, match=r"the tokenizer has \d+ tokens for a model with \d+ token embeddings"):
        encode_texts(load_model(str(tiny_clip_dir)), fallback, ["a red circle", "a blue star"])


def test_features_that_overflow_stop_the_extraction():
    from clip_study.errors import UserError
    from clip_study.models.encoding import encode_batches

    def overflowing(pixels):
        return torch.full((len(pixels), 4), float("inf"))

    with pytest.raises(UserError, match="NaN or infinite features for images 0-1 of extract test: the computation "
                                        "overflows at this precision; use fp32"):
        list(encode_batches(overflowing, [torch.zeros(2, 3, 8, 8)], total=2, desc="extract test"))


def test_a_damaged_pretraining_set_is_one_line(tmp_path):
    from clip_study.demo.shapes import load_pretraining_set, write_pretraining_set
    from clip_study.errors import BadFileError

    path = tmp_path / "pretrain.npz"
    write_pretraining_set(path, np.zeros((4, 8, 8, 3), dtype=np.uint8), ["a", "b", "c", "d"], np.arange(4))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BadFileError, match=r"pretrain.npz: is not a readable npz file \(.*\); generate it again"):
        load_pretraining_set(path)
