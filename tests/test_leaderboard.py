"""The leaderboard over models and datasets, on a constructed metrics folder: 2 models x 2 datasets, each pair's
files the demo model's (the second dataset's top-1 changed in the records), and synthetic test predictions whose
top-1 are the records'. The mean over datasets, the average rank and their paired intervals are checked against
a computation here; the stage runs in-process on the folder and writes the front page, the figures and
results.csv."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clip_study.errors import UserError
from clip_study.evaluation.intervals import Bootstrap, stratified_resamples
from clip_study.evaluation.ranking import dataset_ranks, resampled_top1
from clip_study.files import save_npz
from clip_study.metrics_files.leaderboard import Leaderboard
from clip_study.metrics_files.scores import CLASSIFIERS
from clip_study.pipeline.stage import rebuild
from clip_study.reporting.leaderboard import leaderboard_report, shared_labels
from stages import leaderboard as stage
from tests.conftest import one_dataset
from tools.imports import ROOT

DEMO_MODELS = ROOT / "demo" / "metrics" / "models"
MODELS, DATASETS = ("clip", "siglip"), ("shapes", "tiles")
CLASSES, PER_CLASS = 49, 20  # the demo's test set: 980 images
BOOTSTRAP = Bootstrap(resamples=200, seed=3, confidence=0.9)
TILES_HITS = {  # right test images of each classifier on the second dataset: siglip ahead at zero-shot only
    "clip": {"zeroshot": 700, "probe": 800, "logreg": 810},
    "siglip": {"zeroshot": 705, "probe": 780, "logreg": 790},
}


def set_top1(scores, top1):
    scores.update(top1=top1, top1_low=round(top1 - 0.03, 6), top1_high=round(top1 + 0.03, 6))


def write_pair(folder, model, dataset):
    """The demo model's files; on tiles, each classifier's top-1 is TILES_HITS's. Returns the test hits."""
    shutil.copytree(DEMO_MODELS / model / "shapes", folder, ignore=shutil.ignore_patterns("figures", "*.md"))
    files = {name: json.loads((folder / f"{name}.json").read_text()) for name in ("zeroshot", "probe", "logreg")}
    zeroshot = files["zeroshot"]
    chosen = {**zeroshot["templates"], **zeroshot.get("ensembles", {})}[zeroshot["best"]]
    scores = {"zeroshot": chosen, "probe": files["probe"], "logreg": files["logreg"]}
    if dataset == "tiles":
        for key in CLASSIFIERS:
            set_top1(scores[key], round(TILES_HITS[model][key] / (CLASSES * PER_CLASS), 6))
        zeroshot["best_top1"] = chosen["top1"]
        for name, data in files.items():
            (folder / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    hits = {key: round(scores[key]["top1"] * CLASSES * PER_CLASS) for key in CLASSIFIERS}
    assert all(round(hits[key] / (CLASSES * PER_CLASS), 6) == scores[key]["top1"] for key in CLASSIFIERS)
    return hits


def predictions_of(hits, orders, labels):
    """Each classifier right on the first hits[key] images of its order, the next class elsewhere: within a
    dataset and classifier every model shares the order, so the better one is right wherever the other is."""
    arrays = {"labels": labels}
    for key in CLASSIFIERS:
        right = np.zeros(len(labels), bool)
        right[orders[key][:hits[key]]] = True
        arrays[key] = np.where(right, labels, (labels + 1) % CLASSES)
    return arrays


def stage_args(root, **paths):
    """The stage's command line on the study in ``root`` (as dvc.yaml runs it there); ``paths`` replace some."""
    args = {"params": root / "params.yaml", "metrics_dir": root / "metrics" / "models",
            "predictions": root / "data" / "predictions", "out": root / "metrics" / "leaderboard.json",
            "results": root / "metrics" / "results.csv", "report": root / "metrics" / "report.md",
            "figures": root / "metrics" / "figures"} | paths
    return [part for name, path in args.items() for part in (f"--{name.replace('_', '-')}", str(path))]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The folder as the pipeline lays it out, its params, and the stage run on it."""
    root = tmp_path_factory.mktemp("study")
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    rng = np.random.default_rng(0)
    orders = {dataset: {key: rng.permutation(len(labels)) for key in CLASSIFIERS} for dataset in DATASETS}
    predictions = {}
    for model in MODELS:
        for dataset in DATASETS:
            hits = write_pair(root / "metrics" / "models" / model / dataset, model, dataset)
            predictions[model, dataset] = predictions_of(hits, orders[dataset], labels)
            save_npz(root / "data" / "predictions" / model / f"{dataset}.npz", **predictions[model, dataset])
    params = {"models": {model: {"name": f"data/checkpoints/{model}", "family": f"hf_{model}"} for model in MODELS},
              "datasets": {dataset: one_dataset(f"data/{dataset}", dataset)[dataset] for dataset in DATASETS},
              "shifts": {},
              "evaluation": {"val_fraction": 0.2, "resamples": BOOTSTRAP.resamples,
                             "confidence": BOOTSTRAP.confidence, "seed": BOOTSTRAP.seed, "calibration_bins": 15}}
    (root / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    stage.main(stage_args(root))
    board = Leaderboard.from_json(json.loads((root / "metrics" / "leaderboard.json").read_text()))
    return root, board, predictions, labels


def top1_matrix(predictions, labels, key):
    """(models, datasets) test top-1 of a classifier, from the predictions."""
    return np.array([[np.mean(predictions[model, dataset][key] == labels) for dataset in DATASETS]
                     for model in MODELS])


def test_the_mean_and_the_average_rank_are_those_of_the_predictions(study):
    _, board, predictions, labels = study
    assert [entry.model for entry in board.models] == list(MODELS) and list(board.datasets) == list(DATASETS)
    for key in CLASSIFIERS:
        top1 = top1_matrix(predictions, labels, key)
        ranks = pd.DataFrame(top1, columns=DATASETS).rank(ascending=False).to_numpy()  # CLIP_benchmark's ranking
        for m, entry in enumerate(board.models):
            across = entry.across_datasets.of(key)
            assert across.mean_top1 == pytest.approx(top1[m].mean(), abs=1e-6)
            assert across.average_rank == pytest.approx(ranks[m].mean(), abs=1e-6)
            assert across.mean_top1_low <= across.mean_top1 <= across.mean_top1_high
            assert across.average_rank_low <= across.average_rank <= across.average_rank_high
    zeroshot = {entry.model: entry.across_datasets.zeroshot for entry in board.models}
    assert zeroshot["clip"].average_rank == zeroshot["siglip"].average_rank == 1.5  # one dataset each
    assert board.leader == "clip"  # the tie broken by the higher mean


def test_the_intervals_are_percentiles_of_draws_shared_by_every_model(study):
    _, board, predictions, labels = study
    draws = [list(stratified_resamples(labels, BOOTSTRAP.resamples, BOOTSTRAP.seed + d)) for d in range(len(DATASETS))]
    tail = 100 * (1 - BOOTSTRAP.confidence) / 2
    for key in CLASSIFIERS:
        right = {(model, dataset): predictions[model, dataset][key] == labels
                 for model in MODELS for dataset in DATASETS}
        resampled = np.array([[[right[model, dataset][indices].mean() for indices in draws[d]]
                               for d, dataset in enumerate(DATASETS)] for model in MODELS])  # (M, D, R)
        ranks = np.stack([pd.DataFrame(resampled[:, :, r]).rank(ascending=False).to_numpy()
                          for r in range(BOOTSTRAP.resamples)], axis=-1)
        for m, entry in enumerate(board.models):
            across = entry.across_datasets.of(key)
            for name, values in (("mean_top1", resampled[m].mean(axis=0)), ("average_rank", ranks[m].mean(axis=0))):
                low, high = np.percentile(values, [tail, 100 - tail])
                assert (getattr(across, f"{name}_low"), getattr(across, f"{name}_high")) == pytest.approx(
                    (low, high), abs=1e-6), (key, entry.model, name)
    # paired: siglip is right wherever clip is at zero-shot on tiles, so on every shared draw it is at least as good
    correct = [np.stack([predictions[model, dataset]["zeroshot"] == labels for model in MODELS])
               for dataset in DATASETS]
    tiles = resampled_top1(correct, [labels, labels], BOOTSTRAP)[:, 1]
    assert (tiles[1] >= tiles[0]).all() and (tiles[1] > tiles[0]).any()


def test_tied_models_share_the_mean_of_their_ranks_as_clip_benchmark_ranks():
    top1 = np.array([[0.9, 0.5, 0.2], [0.9, 0.7, 0.2], [0.8, 0.7, 0.2]])  # (models, datasets)
    assert (dataset_ranks(top1) == pd.DataFrame(top1).rank(ascending=False).to_numpy()).all()
    assert dataset_ranks(top1)[:, 2].tolist() == [2.0, 2.0, 2.0]


def test_each_model_is_compared_with_each_datasets_leader(study):
    _, board, _, _ = study
    shapes, tiles = board.datasets["shapes"], board.datasets["tiles"]
    assert (shapes.leader, tiles.leader) == ("clip", "siglip")
    assert (shapes.num_classes, shapes.num_test_images) == (CLASSES, CLASSES * PER_CLASS)
    assert set(shapes.vs_leader) == {"siglip"} and set(tiles.vs_leader) == {"clip"}
    assert tiles.vs_leader["clip"].zeroshot.a_only == 0 and tiles.vs_leader["clip"].zeroshot.b_only == 5
    assert tiles.vs_leader["clip"].probe.verdict.startswith("better, p < 0.001")  # 800 against 780, nested
    assert shapes.vs_leader["siglip"].zeroshot.verdict.startswith("worse, p < 0.001")


def test_the_front_page_has_the_tables_the_verdicts_the_links_and_the_figures(study):
    root, board, _, _ = study
    report = (root / "metrics" / "report.md").read_text()
    assert report.startswith("# CLIP study: 2 models on 2 datasets\n")
    for name in ("Zero-shot", "Linear probe", "Logistic probe"):
        assert f"## {name}\n\n| model | family | shapes | tiles | mean [interval] | average rank [interval] |" in report
    clip, shapes = board.models[0].across_datasets.zeroshot, board.models[0].datasets["shapes"].zeroshot.test
    assert (f"| **clip** | hf_clip | {shapes.top1:.4f} [{shapes.top1_low:.4f}, {shapes.top1_high:.4f}] | "
            "0.7143 [0.6843, 0.7443] | "
            f"{clip.mean_top1:.4f} [{clip.mean_top1_low:.4f}, {clip.mean_top1_high:.4f}] | 1.50 [") in report
    assert "### tiles: leader **siglip** (49 classes, 980 test images)" in report
    assert "| clip | not distinguishable at 980 test images (p = 0.062) | better, p < 0.001 | better, p < 0.001 |" \
        in report
    for model in MODELS:
        for dataset in DATASETS:
            assert f"[report.md](models/{model}/{dataset}/report.md) |" in report
    assert "![zero-shot top-1 per model and dataset](figures/heatmap.png)" in report
    assert "[`results.csv`](results.csv)" in report
    for figure in ("heatmap.png", "leaderboard.png"):
        with Image.open(root / "metrics" / "figures" / figure) as image:
            assert image.format == "PNG" and image.width > 300
    results = pd.read_csv(root / "metrics" / "results.csv")
    assert set(zip(results["model"], results["dataset"])) == {(m, d) for m in MODELS for d in DATASETS}


def test_models_scored_on_different_test_images_are_refused():
    labels = np.arange(6) % 3
    with pytest.raises(UserError, match="models b and a were scored on different test images of tiles"):
        shared_labels({"a": {"labels": labels}, "b": {"labels": labels[::-1].copy()}}, "tiles")


def written_to(folder):
    """The stage's outputs in ``folder``, leaving the study's as they are."""
    return {"out": folder / "leaderboard.json", "results": folder / "results.csv", "report": folder / "report.md",
            "figures": folder / "figures"}


def test_stale_predictions_are_refused_naming_the_pair(study, tmp_path):
    root, _, predictions, labels = study
    stale = tmp_path / "predictions"
    shutil.copytree(root / "data" / "predictions", stale)
    save_npz(stale / "siglip" / "tiles.npz", **{**predictions["siglip", "tiles"], "probe": labels})
    with pytest.raises(UserError, match=r"the probe predictions of siglip on tiles score top-1 1.0, its metrics "
                                        r"files 0.795918: rerun `dvc repro` \(summary@siglip-tiles writes them\)"):
        stage.main(stage_args(root, predictions=stale, **written_to(tmp_path)))


def test_a_damaged_file_names_the_pairs_stage(study, tmp_path, monkeypatch):
    root, _, _, _ = study
    metrics = tmp_path / "models"
    shutil.copytree(root / "metrics" / "models", metrics)
    (metrics / "siglip" / "tiles" / "logreg.json").write_text("{")
    monkeypatch.setenv("DVC_STAGE", "leaderboard")
    with pytest.raises(UserError, match=r"logreg.json: is not valid JSON .*`dvc repro --force --single-item "
                                        r"logreg@siglip-tiles`"):
        stage.main(stage_args(root, metrics_dir=metrics, **written_to(tmp_path)))


def test_the_fix_for_a_damaged_file_names_the_pairs_stage(monkeypatch):
    monkeypatch.setenv("DVC_STAGE", "demo/dvc.yaml:leaderboard")
    assert rebuild("zeroshot@siglip-shapes").endswith(
        "`dvc repro --force --single-item demo/dvc.yaml:zeroshot@siglip-shapes`")


def test_the_studys_own_notes_come_under_the_tables(study):
    _, board, _, _ = study
    figures = {name: f"figures/{name}" for name in ("heatmap.png", "leaderboard.png")}
    reports = {(entry.model, dataset): "report.md" for entry in board.models for dataset in board.datasets}
    plain = leaderboard_report(board, figures, reports)
    noted = leaderboard_report(board, figures, reports, notes="Both models were trained here.\n")
    assert "Reading these numbers" not in plain
    section = "## Reading these numbers\n\nBoth models were trained here.\n\n"
    assert section in noted and noted.replace(section, "") == plain
    assert noted.index(section) > noted.index("## Logistic probe")


def test_without_shift_sets_the_outputs_are_those_of_a_study_without_them(study, tmp_path):
    """No shift set (an empty shifts section): no shift entry in leaderboard.json, no section on the front page, no
    shift rows; and a rerun writes the same bytes."""
    root, _, _, _ = study
    board = json.loads((root / "metrics" / "leaderboard.json").read_text())
    assert "shift" not in board and "Distribution shift" not in (root / "metrics" / "report.md").read_text()
    results = pd.read_csv(root / "metrics" / "results.csv", dtype=str, keep_default_na=False)
    assert set(results["shift"]) == {""} and "distribution_shift" not in set(results["task"])
    copy = tmp_path / "study"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "metrics" / "figures")
    stage.main(stage_args(copy))
    for name in ("leaderboard.json", "results.csv", "report.md", "figures/heatmap.png", "figures/leaderboard.png"):
        assert (copy / "metrics" / name).read_bytes() == (root / "metrics" / name).read_bytes(), name
    assert sorted(path.name for path in (copy / "metrics" / "figures").iterdir()) == ["heatmap.png", "leaderboard.png"]


def test_the_committed_demos_leaderboard_reads_and_writes_back_the_same():
    """The demo's leaderboard.json is a Leaderboard, its shift field the shift sets of shapes alone."""
    committed = json.loads((ROOT / "demo" / "metrics" / "leaderboard.json").read_text())
    board = Leaderboard.from_json(committed)
    assert board.to_json() == committed and list(committed["shift"]) == ["shapes"]
    assert list(committed["shift"]["shapes"]["shift_sets"]) == ["outline", "noisy", "small"]
