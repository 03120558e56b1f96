"""The leaderboard's retrieval part on a constructed study: the metrics folder of tests/test_leaderboard.py (2 models
x 2 datasets) plus one caption set, flickr, whose retrieval.json per model is built here in code. Each model leads
some (direction, recall@k), is clearly behind at some and within the intervals at others; the comparisons with the
leader come from a fake ``compare`` (and, in the stage, a fake ``clip_study.evaluation.retrieval``), so this checks
where they are placed and how they read, not how they are computed. The example-queries figure is drawn for tiny
generated images."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clip_study.errors import UserError
from clip_study.files import read_json, save_npz, write_json
from clip_study.metrics_files.leaderboard import Leaderboard
from clip_study.metrics_files.retrieval import Direction, RetrievalMetrics
from clip_study.metrics_files.scores import CLASSIFIERS
from clip_study.metrics_files.scores import Estimate
from clip_study.metrics_files.scores import IntervalSettings
from clip_study.reporting.results_table import TASKS, load_results, retrieval_rows
from clip_study.reporting.retrieval_board import (build_retrieval_boards, check_retrieval_files, leader_comparisons,
                                                  retrieval_section)
from clip_study.reporting.retrieval_figure import THUMBNAIL, example_queries, plot_retrieval_examples, thumbnail
from stages import leaderboard as stage
from tests.conftest import one_dataset
from tests.test_leaderboard import (BOOTSTRAP, CLASSES, DATASETS, MODELS, PER_CLASS, predictions_of, stage_args,
                                    write_pair)

CAPTION_SET = "flickr"
KS = (1, 5, 10)
# recall@1, @5, @10 of each model: clip leads image → text at 1 and 10 and text → image at 1 and 5, siglip the rest;
# siglip is clearly behind at R@1 both ways, every other gap is within HALF of 0
RECALL = {"clip": {"image_to_text": (0.62, 0.85, 0.91), "text_to_image": (0.45, 0.75, 0.84)},
          "siglip": {"image_to_text": (0.40, 0.86, 0.90), "text_to_image": (0.30, 0.73, 0.86)}}
MEAN_RANK = {"clip": {"image_to_text": (3.2, 2.8, 3.7, 1.0), "text_to_image": (5.5, 4.9, 6.2, 2.0)},
             "siglip": {"image_to_text": (6.25, 5.5, 7.1, 2.0), "text_to_image": (8.0, 7.0, 9.25, 2.5)}}
BENCHMARK = {"image_to_text": "text_retrieval", "text_to_image": "image_retrieval"}
HALF = 0.04  # half the width of every fake difference's interval
RESAMPLES = 1000
SMALLEST_P = round(2 / (RESAMPLES + 1), 6)


def direction(model: str, name: str) -> Direction:
    value, low, high, median = MEAN_RANK[model][name]
    return Direction(queries=100 if name == "image_to_text" else 500, benchmark_name=BENCHMARK[name],
                     recall={f"recall@{k}": Estimate(value=r, low=round(r - 0.03, 6), high=round(r + 0.025, 6))
                             for k, r in zip(KS, RECALL[model][name])},
                     mean_rank=Estimate(value=value, low=low, high=high), median_rank=median)


def record(model: str, template: str | None = None, **changes) -> RetrievalMetrics:
    fields = dict(model=model, caption_set=CAPTION_SET, template=template, images=100, captions=500,
                  image_to_text=direction(model, "image_to_text"), text_to_image=direction(model, "text_to_image"),
                  intervals=IntervalSettings(confidence=0.95, resamples=RESAMPLES, stratified_by="image"))
    return RetrievalMetrics(**(fields | changes))


def fake_compare(caption_set: str, model: str, leader: str) -> dict:
    """Model minus leader at every k both ways: the difference of their recalls, +- HALF, p at its bound when the
    interval excludes 0."""
    found = {}
    for name in BENCHMARK:
        found[name] = {}
        for k, mine, theirs in zip(KS, RECALL[model][name], RECALL[leader][name]):
            difference = round(mine - theirs, 6)
            behind = abs(difference) > HALF
            found[name][f"recall@{k}"] = {"difference": difference, "low": round(difference - HALF, 6),
                                          "high": round(difference + HALF, 6),
                                          "p_value": SMALLEST_P if behind else 0.5}
    return found


def test_the_leaders_and_the_comparisons_are_placed_under_each_model():
    metrics = {CAPTION_SET: {model: record(model, "a photo of {}") for model in MODELS}}
    calls = []

    def compare(caption_set, model, leader):
        calls.append((caption_set, model, leader))
        return fake_compare(caption_set, model, leader)

    comparisons = leader_comparisons(metrics, compare)
    assert sorted(calls) == [(CAPTION_SET, "clip", "siglip"), (CAPTION_SET, "siglip", "clip")]  # once per pair
    clip_vs_siglip = fake_compare(CAPTION_SET, "clip", "siglip")
    assert comparisons == {CAPTION_SET: {
        "clip": {"image_to_text": {"recall@5": clip_vs_siglip["image_to_text"]["recall@5"]},
                 "text_to_image": {"recall@10": clip_vs_siglip["text_to_image"]["recall@10"]}},
        "siglip": {name: {key: values for key, values in fake_compare(CAPTION_SET, "siglip", "clip")[name].items()
                          if key in keys} for name, keys in (("image_to_text", ("recall@1", "recall@10")),
                                                             ("text_to_image", ("recall@1", "recall@5")))}}}
    board = build_retrieval_boards(metrics, comparisons)[CAPTION_SET]
    assert board.leaders.image_to_text == {"recall@1": "clip", "recall@5": "siglip", "recall@10": "clip"}
    assert board.leaders.text_to_image == {"recall@1": "clip", "recall@5": "clip", "recall@10": "siglip"}
    assert (board.template, board.images, board.captions, board.intervals.resamples) == ("a photo of {}", 100, 500,
                                                                                         RESAMPLES)
    assert list(board.models) == list(MODELS)
    for model, entry in board.models.items():
        assert entry.image_to_text == direction(model, "image_to_text")
        assert entry.text_to_image == direction(model, "text_to_image")
    siglip = board.models["siglip"].vs_leader
    assert list(siglip.image_to_text) == ["recall@1", "recall@10"] and list(siglip.text_to_image) == ["recall@1",
                                                                                                     "recall@5"]
    r1 = siglip.image_to_text["recall@1"]
    assert (r1.difference, r1.low, r1.high, r1.p_value) == (-0.22, -0.26, -0.18, SMALLEST_P)
    clip = board.models["clip"].vs_leader
    assert list(clip.image_to_text) == ["recall@5"] and list(clip.text_to_image) == ["recall@10"]
    assert clip.image_to_text["recall@5"].difference == -0.01
    entry = Leaderboard.__dataclass_fields__["retrieval"]  # the board is the leaderboard's retrieval field
    assert entry.metadata["optional"]
    written = {CAPTION_SET: board.to_json()}
    assert json.loads(json.dumps(written))[CAPTION_SET]["models"]["siglip"]["vs_leader"]["image_to_text"][
        "recall@1"] == {"difference": -0.22, "low": -0.26, "high": -0.18, "p_value": SMALLEST_P}


def test_misplaced_comparisons_and_a_compare_short_of_a_k_are_bugs_said_plainly():
    metrics = {CAPTION_SET: {model: record(model) for model in MODELS}}
    comparisons = leader_comparisons(metrics, fake_compare)
    del comparisons[CAPTION_SET]["siglip"]["text_to_image"]["recall@5"]
    with pytest.raises(ValueError, match=r"comparisons of siglip on flickr text_to_image are for \['recall@1'\]"):
        build_retrieval_boards(metrics, comparisons)
    with pytest.raises(ValueError, match=r"compare\('flickr', 'clip', 'siglip'\) has no image_to_text recall@5"):
        leader_comparisons(metrics, lambda caption_set, model, leader: {"image_to_text": {}, "text_to_image": {}})


def test_files_that_are_not_comparable_are_refused_naming_the_stage():
    def fix(model, caption_set):
        return f"rerun retrieval@{model}-{caption_set}"

    with pytest.raises(UserError, match=r"the retrieval.json of siglip on flickr is that of clip on flickr: rerun "
                                        r"retrieval@siglip-flickr"):
        check_retrieval_files(CAPTION_SET, {"clip": record("clip"), "siglip": record("clip")}, fix)
    with pytest.raises(UserError, match=r"siglip and clip were scored with different images of flickr \(90 and "
                                        r"100; one is stale\): rerun retrieval@siglip-flickr, or that of clip"):
        check_retrieval_files(CAPTION_SET, {"clip": record("clip"), "siglip": record("siglip", images=90)}, fix)
    with pytest.raises(UserError, match=r"siglip and clip were scored with different template of flickr"):
        check_retrieval_files(CAPTION_SET, {"clip": record("clip"), "siglip": record("siglip", "a {}")}, fix)


def test_the_front_page_says_who_is_behind_from_the_intervals():
    metrics = {CAPTION_SET: {model: record(model) for model in MODELS}}
    boards = build_retrieval_boards(metrics, leader_comparisons(metrics, fake_compare))
    examples = {(model, CAPTION_SET): f"models/{model}/{CAPTION_SET}/figures/retrieval.png" for model in MODELS}
    text = "\n".join(retrieval_section(boards, examples, 0.95, RESAMPLES))
    assert text.startswith("## Retrieval\n")
    assert "Image → text (CLIP_benchmark: text retrieval)" in text
    assert "Text → image (CLIP_benchmark: image retrieval)" in text
    assert "task `zeroshot_retrieval`" in text and "95 % bootstrap interval from 1000 draws" in text
    assert "### flickr: 100 images, 500 captions\n" in text and "the captions encoded as given." in text
    assert ("| model | image → text R@1 | image → text R@5 | image → text R@10 | text → image R@1 | text → image R@5 | "
            "text → image R@10 | mean rank, image → text | mean rank, text → image |") in text
    assert ("| **clip** | **0.6200** [0.5900, 0.6450] | 0.8500 [0.8200, 0.8750] | **0.9100** [0.8800, 0.9350] | "
            "**0.4500** [0.4200, 0.4750] | **0.7500** [0.7200, 0.7750] | 0.8400 [0.8100, 0.8650] | "
            "3.20 [2.80, 3.70], median 1 | 5.50 [4.90, 6.20], median 2 |") in text
    assert ("| **siglip** | 0.4000 [0.3700, 0.4250] | **0.8600** [0.8300, 0.8850] | 0.9000 [0.8700, 0.9250] | "
            "0.3000 [0.2700, 0.3250] | 0.7300 [0.7000, 0.7550] | **0.8600** [0.8300, 0.8850] | "
            "6.25 [5.50, 7.10], median 2 | 8.00 [7.00, 9.25], median 2.5 |") in text
    lines = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("- **")}
    assert lines["siglip"] == (
        "- **siglip**: Image → text: R@1 behind **clip** by 22.0 points [18.0, 26.0], p ≤ 0.002; R@5 the leader; "
        "R@10 not distinguishable from **clip** (-1.0 points [-5.0, +3.0], p = 0.500). Text → image: R@1 behind "
        "**clip** by 15.0 points [11.0, 19.0], p ≤ 0.002; R@5 not distinguishable from **clip** (-2.0 points "
        "[-6.0, +2.0], p = 0.500); R@10 the leader.")
    assert lines["clip"] == (
        "- **clip**: Image → text: R@1 the leader; R@5 not distinguishable from **siglip** (-1.0 points [-5.0, +3.0], "
        "p = 0.500); R@10 the leader. Text → image: R@1 the leader; R@5 the leader; R@10 not distinguishable from "
        "**siglip** (-2.0 points [-6.0, +2.0], p = 0.500).")
    assert ("Example queries, both ways, with each one's top results: "
            "[clip](models/clip/flickr/figures/retrieval.png), [siglip](models/siglip/flickr/figures/retrieval.png); "
            "clip's:\n\n![clip on flickr: image queries with their top captions, caption queries with their top images]"
            "(models/clip/flickr/figures/retrieval.png)" in text)  # the leader at image -> text R@1 shown


def lowered(side: Direction, by: float) -> Direction:
    """``side`` with every recall ``by`` lower."""
    return dataclasses.replace(side, recall={
        key: Estimate(value=round(e.value - by, 6), low=round(e.low - by, 6), high=round(e.high - by, 6))
        for key, e in side.recall.items()})


def test_a_model_that_leads_everywhere_has_no_line():
    behind = record("siglip", image_to_text=lowered(direction("clip", "image_to_text"), 0.1),
                    text_to_image=lowered(direction("clip", "text_to_image"), 0.1))
    metrics = {CAPTION_SET: {"clip": record("clip"), "siglip": behind}}
    comparisons = leader_comparisons(metrics, lambda caption_set, model, leader: {
        name: {f"recall@{k}": {"difference": -0.1, "low": -0.15, "high": -0.05, "p_value": SMALLEST_P} for k in KS}
        for name in BENCHMARK})
    assert list(comparisons[CAPTION_SET]) == ["siglip"]
    board = build_retrieval_boards(metrics, comparisons)[CAPTION_SET]
    assert board.models["clip"].vs_leader.to_json() == {"image_to_text": {}, "text_to_image": {}}
    text = "\n".join(retrieval_section({CAPTION_SET: board}, {(model, CAPTION_SET): "x.png" for model in MODELS},
                                       0.95, RESAMPLES))
    lines = [line for line in text.splitlines() if line.startswith("- **")]
    assert lines == ["- **siglip**: Image → text: " + "; ".join(
        f"R@{k} behind **clip** by 10.0 points [5.0, 15.0], p ≤ 0.002" for k in KS) + ". Text → image: " + "; ".join(
        f"R@{k} behind **clip** by 10.0 points [5.0, 15.0], p ≤ 0.002" for k in KS) + "."]


# the stage


class FakeRanks:
    """What the fake clip_study.evaluation.retrieval's Ranks.load returns: the path and fix it was given."""

    def __init__(self, path: Path, fix: str | None) -> None:
        self.path, self.fix = Path(path), fix

    @classmethod
    def load(cls, path, fix=None):
        return cls(path, fix)


def caption_entry() -> dict:
    """A params captions entry with every key."""
    return {"source": "data/caption_sets/flickr", "split": "test", "max_images": None, "seed": 0,
            "on_bad_image": "skip"}


def params_of(captions: dict | None) -> dict:
    params = {"models": {model: {"name": f"data/checkpoints/{model}", "family": f"hf_{model}"} for model in MODELS},
              "datasets": {dataset: one_dataset(f"data/{dataset}", dataset)[dataset] for dataset in DATASETS},
              "shifts": {},
              "evaluation": {"val_fraction": 0.2, "resamples": BOOTSTRAP.resamples,
                             "confidence": BOOTSTRAP.confidence, "seed": BOOTSTRAP.seed, "calibration_bins": 15}}
    return params if captions is None else params | {"captions": captions}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """test_leaderboard's study plus flickr, each model's retrieval.json in place, and the stage run on it with a
    fake retrieval module whose compare_retrieval answers fake_compare (every call recorded)."""
    root = tmp_path_factory.mktemp("retrieval_study")
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    rng = np.random.default_rng(0)
    orders = {dataset: {key: rng.permutation(len(labels)) for key in CLASSIFIERS} for dataset in DATASETS}
    for model in MODELS:
        for dataset in DATASETS:
            hits = write_pair(root / "metrics" / "models" / model / dataset, model, dataset)
            save_npz(root / "data" / "predictions" / model / f"{dataset}.npz",
                     **predictions_of(hits, orders[dataset], labels))
        write_json(root / "metrics" / "models" / model / CAPTION_SET / "retrieval.json", record(model).to_json())
    (root / "params.yaml").write_text(json.dumps(params_of({CAPTION_SET: caption_entry()})))
    calls = []

    def compare_retrieval(a, b, ks, bootstrap):
        calls.append((a, b, ks, bootstrap))
        return fake_compare(a.path.stem, a.path.parent.name, b.path.parent.name)

    module = types.ModuleType("clip_study.evaluation.retrieval")
    module.Ranks, module.compare_retrieval = FakeRanks, compare_retrieval
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "clip_study.evaluation.retrieval", module)
        patch.delenv("DVC_STAGE", raising=False)
        stage.main(stage_args(root))
    return root, Leaderboard.from_json(read_json(root / "metrics" / "leaderboard.json")), calls


def test_the_stage_compares_on_both_models_ranks_files_at_the_files_k(study):
    root, board, calls = study
    assert sorted((a.path.parent.name, b.path.parent.name) for a, b, _, _ in calls) == [("clip", "siglip"),
                                                                                       ("siglip", "clip")]
    for a, b, ks, bootstrap in calls:
        for ranks in (a, b):
            assert ranks.path == root / "data" / "predictions" / ranks.path.parent.name / "flickr.npz"
            assert ranks.fix.endswith(f"retrieval@{ranks.path.parent.name}-flickr`")
        assert ks == list(KS) and bootstrap == BOOTSTRAP
    metrics = {CAPTION_SET: {model: record(model) for model in MODELS}}
    assert board.retrieval == build_retrieval_boards(metrics, leader_comparisons(metrics, fake_compare))
    assert list(board.retrieval) == [CAPTION_SET] and board.leader == "clip"


def test_results_csv_has_each_direction_under_clip_benchmarks_names(study):
    root, _, _ = study
    loaded = load_results(root / "metrics")
    assert TASKS[-1] == "zeroshot_retrieval"
    rows = loaded[loaded["task"] == "zeroshot_retrieval"]
    checkpoint = {model: read_json(root / "metrics" / "models" / model / "shapes" / "extract.json")["checkpoint"]
                  for model in MODELS}
    found = [(r["model"], r["pretrained"], r["dataset"], r["shift"], r["classifier"], r["prompt"], r["fewshot_k"],
              r["alpha"], r["metric"], r["value"], r["low"], r["high"]) for r in rows.to_dict("records")]
    found = [tuple(None if value is pd.NA or (isinstance(value, float) and np.isnan(value)) else value
                   for value in row) for row in found]
    expected = []
    for model in MODELS:
        written = read_json(root / "metrics" / "models" / model / CAPTION_SET / "retrieval.json")
        for name, benchmark in BENCHMARK.items():
            side = written[name]
            expected += [(model, checkpoint[model], CAPTION_SET, None, name, None, None, None,
                          f"{benchmark}_recall@{k}", *(side["recall"][f"recall@{k}"][c] for c in ("value", "low",
                                                                                                    "high")))
                         for k in KS]
            expected += [(model, checkpoint[model], CAPTION_SET, None, name, None, None, None, "mean_rank",
                          *(side["mean_rank"][c] for c in ("value", "low", "high"))),
                         (model, checkpoint[model], CAPTION_SET, None, name, None, None, None, "median_rank",
                          side["median_rank"], None, None)]
    assert found == expected  # equal floats: the CSV's text reads back as the JSON's number
    assert found[0][8:] == ("text_retrieval_recall@1", 0.62, 0.59, 0.645)
    clip_rows = loaded.index[loaded["model"] == "clip"]
    assert list(rows.index[rows["model"] == "clip"]) == list(clip_rows[-len(rows) // 2:])  # after clip's datasets
    assert loaded.loc[clip_rows[-1] + 1, "model"] == "siglip"
    assert set(loaded.loc[loaded["task"] != "zeroshot_retrieval", "dataset"]) == set(DATASETS)


def test_the_template_is_the_prompt_column():
    rows = retrieval_rows("clip", "openai/clip", record("clip", "a photo of {}"))
    assert {row["prompt"] for row in rows} == {"a photo of {}"} and len(rows) == 2 * (len(KS) + 2)
    assert [row["metric"] for row in rows[:5]] == ["text_retrieval_recall@1", "text_retrieval_recall@5",
                                                   "text_retrieval_recall@10", "mean_rank", "median_rank"]
    assert rows[5]["metric"] == "image_retrieval_recall@1" and rows[5]["classifier"] == "text_to_image"


def test_the_front_page_has_the_retrieval_section_after_the_classifiers(study):
    root, _, _ = study
    report = (root / "metrics" / "report.md").read_text()
    start, end = report.index("## Retrieval\n"), report.index("## Against each dataset's leader")
    assert report.index("## Logistic probe") < start < end
    section = report[start:end]
    # with the study's 200 resamples, the smallest p-value is 2 / 201
    assert "- **siglip**: Image → text: R@1 behind **clip** by 22.0 points [18.0, 26.0], p ≤ 0.010;" in section
    assert "[siglip](models/siglip/flickr/figures/retrieval.png)" in section


def test_without_caption_sets_nothing_changes(study, tmp_path):
    """captions: {} and no captions section at all write the same bytes, and none of them speaks of retrieval."""
    root, _, _ = study
    outputs = {}
    for name, captions in (("empty", {}), ("absent", None)):
        params = tmp_path / f"{name}.yaml"
        params.write_text(json.dumps(params_of(captions)))
        out = tmp_path / name
        stage.main(stage_args(root, params=params, out=out / "leaderboard.json", results=out / "results.csv",
                              report=out / "report.md", figures=out / "figures"))
        outputs[name] = {file: (out / file).read_bytes() for file in ("leaderboard.json", "results.csv", "report.md")}
    assert outputs["empty"] == outputs["absent"]
    assert b"retrieval" not in outputs["empty"]["leaderboard.json"] + outputs["empty"]["results.csv"]
    assert b"Retrieval" not in outputs["empty"]["report.md"]


def test_a_damaged_retrieval_json_names_the_retrieval_stage(study, tmp_path, monkeypatch):
    root, _, _ = study
    metrics = tmp_path / "models"
    shutil.copytree(root / "metrics" / "models", metrics)
    (metrics / "siglip" / CAPTION_SET / "retrieval.json").write_text("{")
    monkeypatch.setenv("DVC_STAGE", "leaderboard")
    with pytest.raises(UserError, match=r"retrieval.json: is not valid JSON .*`dvc repro --force --single-item "
                                        r"retrieval@siglip-flickr`"):
        stage.main(stage_args(root, metrics_dir=metrics, out=tmp_path / "leaderboard.json",
                              results=tmp_path / "results.csv", report=tmp_path / "report.md",
                              figures=tmp_path / "figures"))


# the figure


def tiny_caption_set(folder: Path, images: int, per_image: int = 2) -> tuple[list[Path], list[str], np.ndarray]:
    """``images`` 32 px squares of random colours, each with ``per_image`` captions."""
    rng = np.random.default_rng(1)
    paths, captions = [], []
    for i in range(images):
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[:] = rng.integers(0, 256, 3)
        pixels[8:24, 8:24] = rng.integers(0, 256, 3)
        paths.append(folder / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
        captions += [f"square number {i}, caption {j}" + " and many more words" * j for j in range(per_image)]
    return paths, captions, np.repeat(np.arange(images), per_image)


def test_example_queries_are_seeded_valid_and_of_other_images_when_possible():
    text_image = np.repeat(np.arange(12), 2)
    images, captions = example_queries(12, text_image, 4, seed=0)
    assert (images, captions) == example_queries(12, text_image, 4, seed=0)
    assert (images, captions) != example_queries(12, text_image, 4, seed=1)
    assert (images, captions) == ([3, 5, 7, 6], [1, 19, 3, 23])
    assert len(set(images)) == 4 and all(0 <= i < 12 for i in images)
    assert len({int(text_image[c]) for c in captions}) == 4 and not {int(text_image[c]) for c in captions} & set(images)
    few_images, few_captions = example_queries(6, np.repeat(np.arange(6), 2), 4, seed=0)  # only 2 other images
    assert len(few_captions) == 4 and len(set(few_captions)) == 4 and all(0 <= c < 12 for c in few_captions)
    assert len({c // 2 for c in few_captions[:2]} - set(few_images)) == 2
    small_images, small_captions = example_queries(3, np.array([0, 1, 2]), 5, seed=0)
    assert sorted(small_images) == [0, 1, 2] and sorted(small_captions) == [0, 1, 2]  # all there are


def test_the_figure_is_a_png_of_a_sensible_size_with_sharp_tiny_images(tmp_path):
    paths, captions, text_image = tiny_caption_set(tmp_path, 12)
    images, queries = example_queries(12, text_image, 4, seed=0)
    rng = np.random.default_rng(0)
    image_top = np.stack([rng.permutation(len(captions))[:5] for _ in images])
    image_top[0, 0] = 2 * images[0]  # the first image query's first caption is right
    text_top = np.stack([rng.permutation(12)[:5] for _ in queries])
    text_top[0, 2] = text_image[queries[0]]
    out = tmp_path / "figures" / "retrieval.png"
    plot_retrieval_examples(paths, captions, text_image, images, image_top, queries, text_top, out,
                            "clip on flickr: example queries")
    with Image.open(out) as image:
        assert image.format == "PNG" and 700 <= image.width <= 1000 and 900 <= image.height <= 1400
    pixels = thumbnail(paths[0])
    original = np.asarray(Image.open(paths[0]).convert("RGB"))
    assert pixels.shape == (THUMBNAIL, THUMBNAIL, 3) and np.array_equal(pixels[::3, ::3], original)
    assert np.array_equal(pixels[1::3, 2::3], original)  # every pixel a 3 x 3 block: nearest-neighbour
    with pytest.raises(ValueError, match=r"text_top has shape \(3, 5\): need one row of ranked indices per text "
                                         r"query \(4\)"):
        plot_retrieval_examples(paths, captions, text_image, images, image_top, queries, text_top[:3], out, "x")
