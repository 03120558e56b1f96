"""End to end: `dvc repro` in a temporary git repo, then which stages a param change reruns."""

import json
import shutil
import sys

import pytest
import yaml
from PIL import Image

from clip_study import load_results
from tests.dvc_repo import PIPELINE_MODELS as MODELS, commit, metrics, per_pair, repro, set_params, sh

pytestmark = pytest.mark.slow  # runs the main pipeline with dvc repro in a project copy

PER_MODEL = ("extract", "zeroshot", "similarity", "probe", "logreg", "fewshot", "zsinit", "wiseft", "summary",
             "report")
ALL_STAGES = {"check", "scan@shapes", "fetch@shapes", *per_pair(MODELS, *PER_MODEL), "leaderboard"}
ALWAYS_RUN = {"check", "scan@shapes"}  # always run: check reads the params file, scan lists the image folder (DVC cannot watch it)
CLIP = "clip"


def test_repro_runs_every_stage_and_writes_sane_metrics(pipeline_run):
    repo, ran = pipeline_run
    assert ran == ALL_STAGES
    zeroshot = metrics(repo, "zeroshot.json", model=CLIP)
    assert zeroshot["num_classes"] == 6 and zeroshot["num_test_images"] == 12  # 6 classes x 4 images x 0.5
    assert zeroshot["chance_top1"] == pytest.approx(1 / 6, abs=1e-6)
    assert len(zeroshot["templates"]) == 6
    for result in zeroshot["templates"].values():
        assert 0 <= result["top1"] <= result["top5"] <= 1 and 0 <= result["macro_f1"] <= 1
    results = {**zeroshot["templates"], **zeroshot["ensembles"]}
    for result in results.values():
        assert result["top1_low"] <= result["top1"] <= result["top1_high"]
        assert result["macro_f1_low"] <= result["macro_f1"] <= result["macro_f1_high"]
    # chosen on the train images, never on test; the test-picked one is the oracle
    assert zeroshot["best"] == max(results, key=lambda key: results[key]["choice_top1"])
    assert zeroshot["best_top1"] == results[zeroshot["best"]]["top1"]
    assert zeroshot["oracle_top1"] == max(r["top1"] for r in results.values()) >= zeroshot["best_top1"]
    assert results[zeroshot["best"]]["vs_chosen"] is None
    assert all(r["vs_chosen"]["p_value"] <= 1 for key, r in results.items() if key != zeroshot["best"])
    chosen_template = zeroshot["templates"].get(zeroshot["best"], {}).get("template", zeroshot["best"])
    assert zeroshot["best_template"] == chosen_template
    calibration = zeroshot["calibration"]
    assert calibration["temperature"] > 0 and 0 <= calibration["after"]["ece"] <= 1

    similarity = metrics(repo, "similarity.json", model=CLIP)
    assert similarity["template"] == zeroshot["best"]
    assert similarity["cosine"]["top1"] == zeroshot["best_top1"]  # the same classifier, recomputed
    assert similarity["cosine"]["top1_low"] == zeroshot["best_top1_low"]  # the same bootstrap draws
    assert 0 <= similarity["dot"]["vs_cosine"]["p_value"] <= 1
    norms = similarity["text_norms"]
    assert 0 < norms["min"] <= norms["mean"] <= norms["max"] and norms["std"] >= 0

    probe, curve = metrics(repo, "probe.json", model=CLIP), metrics(repo, "probe_curve.json", model=CLIP)
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    assert probe["chosen_epoch"] == 1 + max(range(3), key=lambda i: (curve[i]["val_top1"], -i))
    assert probe["top1"] == curve[probe["chosen_epoch"] - 1]["top1"]  # the test score of the validation choice
    assert probe["final"]["top1"] == curve[-1]["top1"] and probe["oracle_top1"] == max(r["top1"] for r in curve)
    assert probe["num_train_images"] == 12 and probe["num_classes"] == 6

    summary = metrics(repo, "summary.json", model=CLIP)[CLIP]["shapes"]  # a DVC metrics file: keys under the pair
    assert summary["zeroshot_best"]["top1"] == zeroshot["best_top1"] and summary["probe"]["top1"] == probe["top1"]
    assert summary["zeroshot"] == {key: {name: result[name] for name in ("top1", "top1_low", "top1_high")}
                                   for key, result in results.items()}
    paired = metrics(repo, "paired.json", model=CLIP)
    assert summary["p_value"]["probe_vs_zeroshot"] == paired["probe_vs_zeroshot"]["p_value"]
    assert summary["probe_minus_zeroshot"] == pytest.approx(probe["top1"] - zeroshot["best_top1"], abs=1e-6)
    assert all(isinstance(value, (int, float)) for value in flat_values(summary))
    assert "| zero-shot, cosine |" in (repo / "metrics" / "models" / CLIP / "shapes" / "summary.md").read_text()
    assert repro(repo) == ALWAYS_RUN  # nothing changed, nothing else reruns


def test_the_same_params_give_byte_identical_metrics_and_outputs(pipeline_run, tmp_path):
    """A forced second run in a copy of the repo: every metrics file, the lock and every output under data/ (so
    git sees no change); the measured speed is only in the untracked logs, data/speed/."""
    first = pipeline_run[0]
    second = tmp_path / "again"
    shutil.copytree(first, second, symlinks=True)
    commit(second, "the first run")
    assert repro(second, "--force") == ALL_STAGES
    for file in sorted((first / "metrics").rglob("*")):
        if file.is_file():
            assert (second / "metrics" / file.relative_to(first / "metrics")).read_bytes() == file.read_bytes(), file
    assert data_hashes(second) == data_hashes(first)
    assert sh(second, "git", "status", "--porcelain") == ""
    for model in MODELS:
        speed = metrics(second, f"{model}/shapes.json", folder="data/speed")
        assert speed["model"] == model and speed["images_encoded"] == 24 and speed["images_per_second"] > 0


def data_hashes(repo) -> dict[str, str]:
    """The hash dvc.lock records for every output under data/."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])
            if out["path"].startswith("data/")}


def flat_values(value):
    """Every leaf of a nested dict (None: a value not measured)."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in flat_values(item)]
    return [] if value is None else [value]


@pytest.fixture
def repo(pipeline_run):
    return pipeline_run[0]


def test_a_template_change_reruns_only_the_text_side(repo):
    set_params(repo, zeroshot__templates=["a photo of a {}", "a drawing of a {}"])
    # no probe is refit but zsinit, which starts from the zero-shot weights; wiseft mixes the new zero-shot heads
    assert repro(repo) == ALWAYS_RUN | per_pair(MODELS, "zeroshot", "similarity", "zsinit", "wiseft", "summary",
                                                "report") | {"leaderboard"}
    assert set(metrics(repo, "zeroshot.json", model=CLIP)["templates"]) == {"a_photo_of_a", "a_drawing_of_a"}


def test_a_probe_change_reruns_only_probe_and_summary(repo):
    set_params(repo, probe__epochs=2)
    assert repro(repo) == ALWAYS_RUN | per_pair(MODELS, "probe", "summary", "report") | {"leaderboard"}
    assert len(metrics(repo, "probe_curve.json", model=CLIP)) == 2


def test_a_model_change_reruns_only_that_models_stages(repo, other_clip_dir):
    siglip = metrics(repo, "summary.json", model="siglip")
    set_params(repo, models__clip__name=str(other_clip_dir))
    assert repro(repo) == ALWAYS_RUN | per_pair(CLIP, *PER_MODEL) | {"leaderboard"}
    assert metrics(repo, "summary.json", model="siglip") == siglip
    assert metrics(repo, "extract.json", model=CLIP)["checkpoint"] == str(other_clip_dir)


def test_the_leaderboard_puts_the_models_side_by_side(repo):
    board = metrics(repo, "leaderboard.json")
    rows = {row["model"]: row for row in board["models"]}
    assert list(rows) == list(MODELS) and board["datasets"]["shapes"]["num_test_images"] == 12
    assert {rows[m]["family"] for m in MODELS} == {"hf_clip", "hf_siglip"}
    for model in MODELS:
        summary = metrics(repo, "summary.json", model=model)[model]["shapes"]
        row = rows[model]["datasets"]["shapes"]
        assert {key: row["zeroshot"][key] for key in ("top1", "top1_low", "top1_high")} == summary["zeroshot_best"]
        assert row["probe"] == summary["probe"] and row["logreg"] == summary["logreg"]
        assert row["fewshot_16"] is None  # the fixture's shots stop before 16
        assert rows[model]["parameters"] > 0 and row["device"] == "cpu"
        across = rows[model]["across_datasets"]["zeroshot"]  # one dataset: its mean is its top-1
        assert across["mean_top1"] == pytest.approx(row["zeroshot"]["top1"], abs=1e-6)
    leader = max(MODELS, key=lambda m: rows[m]["datasets"]["shapes"]["zeroshot"]["top1"])
    assert board["datasets"]["shapes"]["leader"] == leader
    assert set(board["datasets"]["shapes"]["vs_leader"]) == set(MODELS) - {leader}
    report = (repo / "metrics" / "report.md").read_text()
    assert "## Zero-shot" in report and "(models/clip/shapes/report.md)" in report and "hf_siglip" in report
    assert (repo / "metrics" / "figures" / "heatmap.png").stat().st_size > 0
    table = load_results(repo / "metrics")
    assert set(table["model"]) == set(MODELS) and set(table["dataset"]) == {"shapes"}


def test_prompt_sweep_with_dvc_exp_run(repo):
    commit(repo)
    out = sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", 'zeroshot.templates=["a {}","an image of a {}"]')
    assert "Running stage 'zeroshot@clip-shapes'" in out and "Running stage 'extract" not in out
    shown = sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--json")
    assert "an_image_of_a" in shown and "a_photo_of_a" in shown  # the experiment's and the baseline's keys
    diff = sh(repo, sys.executable, "-m", "dvc", "metrics", "diff", "--all")  # unchanged rows too
    assert "clip.shapes.zeroshot.an_image_of_a" in diff  # each pair's summary.json, keys under model and dataset
    rows = [line.split()[1] for line in diff.splitlines() if "zeroshot.an_image_of_a." in line]
    assert sorted(rows) == [f"{model}.shapes.zeroshot.an_image_of_a.{key}" for model in MODELS
                            for key in ("top1", "top1_high", "top1_low")]  # each model's, side by side


def test_an_evaluation_change_rescores_without_encoding_images(repo):
    set_params(repo, evaluation__resamples=200)
    assert repro(repo) == ALWAYS_RUN | per_pair(MODELS, "zeroshot", "similarity", "probe", "logreg", "fewshot", "zsinit",
                                                "wiseft", "summary", "report") | {"leaderboard"}
    assert metrics(repo, "zeroshot.json", model=CLIP)["interval"]["resamples"] == 200


def test_fetch_reruns_when_the_image_folder_changes_and_only_then(repo, shape_folder, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(shape_folder, folder)
    set_params(repo, datasets__shapes__source=str(folder))
    # the same images: the same subset, so nothing after fetch reruns but the leaderboard (it lists the datasets
    # section, whose source changed; a second's work, the same files)
    assert repro(repo) == ALWAYS_RUN | {"fetch@shapes", "leaderboard"}
    assert repro(repo) == ALWAYS_RUN  # nothing touched
    chosen = {c["id"] for c in json.loads((repo / "data" / "datasets" / "shapes" / "subset" / "classes.json").read_text())}
    other = next(f for f in sorted(folder.iterdir()) if f.name not in chosen)
    Image.new("RGB", (32, 32), "red").save(other / "new.png")
    found = metrics(repo, "datasets/shapes/fetch.json")["images_found"]
    assert repro(repo) == ALWAYS_RUN | {"fetch@shapes"}  # an image added to a class the subset leaves out
    assert metrics(repo, "datasets/shapes/fetch.json")["images_found"] == found + 1
    assert repro(repo) == ALWAYS_RUN
