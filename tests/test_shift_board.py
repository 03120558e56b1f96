"""The leaderboard's distribution-shift part on a constructed study: the metrics folder of tests/test_leaderboard.py
(2 models x 2 datasets) plus two shift sets of shapes (outline: 300 images, noisy: 200), each (model, shift set)'s
shift.json and predictions file written as the shift stage writes them, from per-image correctness whose every
top-1 is set here. The shift average, the drop, effective robustness and the drop against zero-shot (value and
paired interval) are recomputed here without the library's evaluation; the front page's words follow the numbers;
results.csv holds every classifier on each shift set and on the average."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import expit, logit
from scipy.stats import linregress

from clip_study.errors import UserError
from clip_study.evaluation.intervals import stratified_resamples
from clip_study.evaluation.shift import TestSet, evaluate_shift
from clip_study.files import read_json, save_npz, write_json
from clip_study.metrics_files.leaderboard import Leaderboard
from clip_study.metrics_files.shift import FILES as SHIFT_FILES
from clip_study.reporting.shift import (Classifier, ShiftScores, alpha_curves, load_predictions, save_predictions,
                                        shift_metrics)
from clip_study.reporting.shift_board import build_shift_boards
from stages import leaderboard as stage
from tests.conftest import one_dataset
from tests.test_leaderboard import (BOOTSTRAP, CLASSES, DATASETS, MODELS, PER_CLASS, predictions_of, stage_args,
                                    write_pair)

SHIFTS = {"outline": (10, 30), "noisy": (8, 25)}  # shift set -> (classes, images per class)
CHOSEN, OTHER = "zeroshot/a_picture_of_a", "zeroshot/clip_80"  # the demo's chosen template and one ensemble
# (name, kind, chosen, k, alpha, fit point) of every row, in the order the shift stage writes them
ROWS = [(CHOSEN, "zeroshot", True, None, None, False), (OTHER, "zeroshot", False, None, None, False),
        ("probe", "probe", False, None, None, False), ("logreg", "logreg", False, None, None, False),
        ("fewshot/k=1", "fewshot", False, "1", None, False), ("fewshot/k=all", "fewshot", False, "all", None, False),
        ("zsinit/k=all", "zsinit", False, "all", None, False),
        ("zsinit_mix/k=all", "zsinit_mix", False, "all", None, False),
        *((f"{kind}/alpha={a}", kind, a == 0.5, None, a, False) for kind in ("wiseft_logreg", "wiseft_zsinit")
          for a in (0.0, 0.5, 1.0)),
        *((f"logreg/C={c}", "logreg_sweep", False, None, None, True) for c in ("0.01", "1", "100")),
        *((f"fewshot/k={k}/seed={s}", "fewshot", False, None, None, True) for k, s in (("1", 0), ("1", 1), ("all", 0)))]
# top-1 on (shapes, outline, noisy) of each row that is not a copy of another; clip's logistic probe loses far
# more than zero-shot (drops 0.40 and 0.10), siglip's far less (0.02 and 0.15); both linear probes about as much
RATES = {
    "clip": {CHOSEN: (0.70, 0.62, 0.58), OTHER: (0.65, 0.60, 0.50), "probe": (0.85, 0.76, 0.72),
             "logreg": (0.90, 0.55, 0.45), "fewshot/k=1": (0.40, 0.30, 0.30), "fewshot/k=all": (0.80, 0.60, 0.50),
             "zsinit/k=all": (0.85, 0.60, 0.50), "zsinit_mix/k=all": (0.86, 0.70, 0.60),
             "wiseft_logreg/alpha=0.5": (0.88, 0.75, 0.73), "wiseft_zsinit/alpha=0.5": (0.80, 0.60, 0.56)},
    "siglip": {CHOSEN: (0.75, 0.62, 0.58), OTHER: (0.70, 0.60, 0.54), "probe": (0.88, 0.74, 0.72),
               "logreg": (0.80, 0.80, 0.76), "fewshot/k=1": (0.45, 0.30, 0.34), "fewshot/k=all": (0.82, 0.62, 0.52),
               "zsinit/k=all": (0.86, 0.64, 0.56), "zsinit_mix/k=all": (0.87, 0.70, 0.66),
               "wiseft_logreg/alpha=0.5": (0.84, 0.86, 0.84), "wiseft_zsinit/alpha=0.5": (0.82, 0.62, 0.56)},
}
FIT = {"logreg/C=0.01": (0.30, 0.20, 0.16), "logreg/C=1": (0.60, 0.45, 0.40), "logreg/C=100": (0.85, 0.60, 0.50),
       "fewshot/k=1/seed=0": (0.35, 0.25, 0.30), "fewshot/k=1/seed=1": (0.45, 0.35, 0.30),
       "fewshot/k=all/seed=0": (0.80, 0.60, 0.50)}
COPIES = {"wiseft_logreg/alpha=0.0": CHOSEN, "wiseft_logreg/alpha=1.0": "logreg", "wiseft_zsinit/alpha=0.0": CHOSEN,
          "wiseft_zsinit/alpha=1.0": "zsinit/k=all"}  # alpha 0 is zero-shot, alpha 1 the fitted head


def labels_of(classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(classes), per_class)


SOURCE_LABELS = labels_of(CLASSES, PER_CLASS)
SHIFT_LABELS = {shift: labels_of(*size) for shift, size in SHIFTS.items()}


def correctness(model: str) -> dict[str, dict[str, np.ndarray]]:
    """Row name -> set ('source' or a shift set) -> 1/0 per image, right on exactly round(rate * N) images (a
    seeded random choice); the copies are their originals'."""
    rng = np.random.default_rng(len(model))
    rates = {**RATES[model], **FIT}
    found = {}
    for name, values in rates.items():
        found[name] = {}
        for where, rate in zip(("source", *SHIFTS), values):
            n = len(SOURCE_LABELS) if where == "source" else len(SHIFT_LABELS[where])
            right = np.zeros(n, np.float32)
            right[rng.permutation(n)[:round(rate * n)]] = 1
            found[name][where] = right
    return found | {copy: found[original] for copy, original in COPIES.items()}


def scores_on(shift: str, correct: dict[str, dict[str, np.ndarray]]) -> ShiftScores:
    """What the shift stage's ``score`` returns on one shift set, built from the correctness."""
    rows = [Classifier(name, kind, chosen, k, alpha, [("heads", i)], fit)
            for i, (name, kind, chosen, k, alpha, fit) in enumerate(ROWS)]
    stack = {where: np.stack([correct[row.name][where] for row in rows]) for where in ("source", shift)}
    return ShiftScores(rows=rows, source=TestSet(stack["source"], SOURCE_LABELS),
                       shift=TestSet(stack[shift], SHIFT_LABELS[shift]), reference=0,
                       fit_set=[i for i, row in enumerate(rows) if row.fit],
                       curves=alpha_curves([row.kind for row in rows], [row.alpha for row in rows]))


def write_shift(root, model: str, shift: str, correct) -> None:
    """shift.json and the predictions file of one (model, shift set), as stages/shift.py writes them."""
    scores = scores_on(shift, correct)
    evaluation = evaluate_shift(scores.source, [scores.shift], BOOTSTRAP, reference=scores.reference,
                                fit_set=scores.fit_set, curves=list(scores.curves.values()))
    classes = SHIFTS[shift][0]
    metrics = shift_metrics(shift, "shapes", scores, evaluation, BOOTSTRAP, classes, CLASSES, classes)
    write_json(root / "metrics" / "models" / model / shift / "shift.json", metrics.to_json())
    save_predictions(root / "data" / "predictions" / model / f"{shift}.npz", scores)


def shift_entry(of: str) -> dict:
    """A params shifts entry with every key (as the check stage wants them)."""
    return {"of": of, "source": "data/shift_sets/x", "split": "train", "max_per_class": None, "seed": 0,
            "class_names": None, "class_map": None, "on_bad_image": "skip"}


def params_of(shifts: dict) -> dict:
    return {"models": {model: {"name": f"data/checkpoints/{model}", "family": f"hf_{model}"} for model in MODELS},
            "datasets": {dataset: one_dataset(f"data/{dataset}", dataset)[dataset] for dataset in DATASETS},
            "shifts": shifts,
            "evaluation": {"val_fraction": 0.2, "resamples": BOOTSTRAP.resamples, "confidence": BOOTSTRAP.confidence,
                           "seed": BOOTSTRAP.seed, "calibration_bins": 15}}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The leaderboard's study with the two shift sets of shapes, and the stage run on it."""
    root = tmp_path_factory.mktemp("shift_study")
    rng = np.random.default_rng(0)
    orders = {dataset: {key: rng.permutation(len(SOURCE_LABELS)) for key in ("zeroshot", "probe", "logreg")}
              for dataset in DATASETS}
    correct = {}
    for model in MODELS:
        for dataset in DATASETS:
            hits = write_pair(root / "metrics" / "models" / model / dataset, model, dataset)
            save_npz(root / "data" / "predictions" / model / f"{dataset}.npz",
                     **predictions_of(hits, orders[dataset], SOURCE_LABELS))
        correct[model] = correctness(model)
        for shift in SHIFTS:
            write_shift(root, model, shift, correct[model])
    (root / "params.yaml").write_text(json.dumps(params_of({shift: shift_entry("shapes") for shift in SHIFTS})))
    stage.main(stage_args(root))
    board = Leaderboard.from_json(read_json(root / "metrics" / "leaderboard.json"))
    return root, board, correct


def test_the_shift_average_drop_and_effective_robustness_are_recomputed_here(study):
    _, board, correct = study
    assert list(board.shift) == ["shapes"]  # tiles has no shift set
    shapes = board.shift["shapes"]
    assert shapes.shift_sets == {"outline": 300, "noisy": 200} and shapes.num_source_images == 980
    assert list(shapes.models) == list(MODELS)
    for model, entry in shapes.models.items():
        accuracy = {name: {where: float(values.mean()) for where, values in sets.items()}
                    for name, sets in correct[model].items()}
        average = {name: np.mean([acc["outline"], acc["noisy"]]) for name, acc in accuracy.items()}
        assert entry.reference == CHOSEN
        assert list(entry.classifiers) == ["zeroshot", "probe", "logreg", "zsinit_mix", "wiseft_logreg",
                                           "wiseft_zsinit"]
        assert [h.name for h in entry.classifiers.values()] == [CHOSEN, "probe", "logreg", "zsinit_mix/k=all",
                                                                "wiseft_logreg/alpha=0.5", "wiseft_zsinit/alpha=0.5"]
        points = list(FIT)
        x = logit(np.clip([accuracy[p]["source"] for p in points], 0.5 / 980, 1 - 0.5 / 980))
        y = logit(np.clip([average[p] for p in points], 0.5 / 500, 1 - 0.5 / 500))
        line = linregress(x, y)
        assert (entry.fit.slope.value, entry.fit.intercept.value) == pytest.approx((line.slope, line.intercept),
                                                                                   abs=1e-5)
        assert [p.name for p in entry.fit.points] == points and entry.fit.shift_clip == round(0.5 / 500, 9)
        for headline in entry.classifiers.values():
            name = headline.name
            assert headline.source.value == round(accuracy[name]["source"], 6)
            assert headline.shift.value == pytest.approx(average[name], abs=1e-6)
            assert headline.shift.value == pytest.approx(RATES[model][name][1:] @ np.array([0.5, 0.5]), abs=2e-3)
            assert headline.drop.value == pytest.approx(accuracy[name]["source"] - average[name], abs=1e-6)
            expected = average[name] - expit(line.slope * logit(accuracy[name]["source"]) + line.intercept)
            assert headline.effective_robustness.value == pytest.approx(expected, abs=1e-5)
            zero_shot_drop = accuracy[CHOSEN]["source"] - average[CHOSEN]
            assert headline.drop_vs_zero_shot.value == pytest.approx(
                accuracy[name]["source"] - average[name] - zero_shot_drop, abs=1e-6)
            for shift in SHIFTS:  # each set's own top-1, as its shift.json has it
                assert headline.shift_sets[shift] == round(accuracy[name][shift], 6)
            for estimate in (headline.source, headline.shift, headline.drop, headline.effective_robustness):
                assert estimate.low <= estimate.value <= estimate.high
        assert entry.classifiers["wiseft_logreg"].alpha == 0.5 and entry.classifiers["probe"].alpha is None
        assert [r.curve for r in entry.alpha_curves] == ["wiseft_logreg"] * 3 + ["wiseft_zsinit"] * 3
        assert [r.shift_top1 for r in entry.alpha_curves[:3]] == pytest.approx(
            [average[f"wiseft_logreg/alpha={a}"] for a in (0.0, 0.5, 1.0)], abs=1e-6)


def test_the_drop_against_zero_shot_is_paired_on_draws_of_every_set(study):
    """Independently: the dataset's draws with the evaluation seed, shift set j's with seed + 1 + j (params
    order), each resample's shift average over the sets; percentile interval of drop minus zero-shot's drop."""
    _, board, correct = study
    draws = {where: list(stratified_resamples(labels, BOOTSTRAP.resamples, BOOTSTRAP.seed + offset))
             for offset, (where, labels) in enumerate((("source", SOURCE_LABELS), *SHIFT_LABELS.items()))}
    tail = 100 * (1 - BOOTSTRAP.confidence) / 2
    for model, entry in board.shift["shapes"].models.items():
        def drops(name):
            source = np.array([correct[model][name]["source"][d].mean() for d in draws["source"]])
            shift = np.mean([[correct[model][name][s][d].mean() for d in draws[s]] for s in SHIFTS], axis=0)
            return source - shift

        for role in ("probe", "logreg"):
            difference = drops(role) - drops(CHOSEN)
            comparison = entry.classifiers[role].drop_vs_zero_shot
            assert (comparison.low, comparison.high) == pytest.approx(
                tuple(np.percentile(difference, [tail, 100 - tail])), abs=1e-6)
            rarer = min((difference <= 0).sum(), (difference >= 0).sum())
            assert comparison.p_value == pytest.approx(min(1, 2 * (rarer + 1) / (BOOTSTRAP.resamples + 1)), abs=1e-6)
    logreg = {model: entry.classifiers["logreg"].drop_vs_zero_shot for model, entry in
              board.shift["shapes"].models.items()}
    assert logreg["clip"].low > 0 and logreg["siglip"].high < 0  # the cases the front page words
    for entry in board.shift["shapes"].models.values():
        probe = entry.classifiers["probe"].drop_vs_zero_shot
        assert probe.low < 0 < probe.high
        wiseft = {check.curve: check for check in entry.curves}
        assert wiseft["wiseft_logreg"].beats_both_ends and not wiseft["wiseft_zsinit"].beats_both_ends


def test_one_shift_set_averages_to_its_own_shift_json(study):
    """The average over one set is that set: the same seeds as the shift stage, so the same numbers."""
    root, _, _ = study
    inputs = {model: {"shapes": {"noisy": (SHIFT_FILES[0].read(root / "metrics" / "models" / model / "noisy" /
                                                                "shift.json"),
                                           load_predictions(root / "data" / "predictions" / model / "noisy.npz",
                                                            fix="rerun"))}} for model in MODELS}
    boards, averages = build_shift_boards(inputs, BOOTSTRAP, lambda model, shift: "rerun")
    for model in MODELS:
        written = inputs[model]["shapes"]["noisy"][0]
        assert averages[model, "shapes"] == written.classifiers
        assert boards["shapes"].models[model].fit == written.fit
        assert boards["shapes"].models[model].curves == written.curves


def test_the_front_page_answers_in_words_that_follow_the_numbers(study):
    root, board, _ = study
    report = (root / "metrics" / "report.md").read_text()
    section = report[report.index("## Distribution shift\n"):report.index("## Against each dataset's leader")]
    assert "### shapes: 2 shift sets\n" in section and "tiles" not in section
    assert "Shift sets: outline (300 images), noisy (200 images); 980 test images of shapes." in section
    assert ("| model | classifier | shapes top-1 | outline | noisy | shift average | drop | effective robustness |"
            in section)
    clip = board.shift["shapes"].models["clip"].classifiers
    logreg = clip["logreg"]
    assert (f"| **clip** | logistic probe | {logreg.source.value:.4f} [{logreg.source.low:.4f}, "
            f"{logreg.source.high:.4f}] | {logreg.shift_sets['outline']:.4f} | {logreg.shift_sets['noisy']:.4f} | "
            f"{logreg.shift.value:.4f} [") in section
    assert "| **clip** | zero-shot (`a_picture_of_a`) |" in section
    assert "| **siglip** | WiSE-FT logreg (alpha 0.5) |" in section
    lines = {line.split("**")[1]: line for line in section.splitlines() if line.startswith("- **")}
    comparison = logreg.drop_vs_zero_shot
    assert (f"the logistic probe loses {100 * comparison.value:.1f} points more than zero-shot under shift "
            f"[{100 * comparison.low:.1f}, {100 * comparison.high:.1f}], p ≤ 0.010") in lines["clip"]
    siglip = board.shift["shapes"].models["siglip"].classifiers["logreg"].drop_vs_zero_shot  # negative: less
    assert (f"the logistic probe loses {-100 * siglip.value:.1f} points less than zero-shot under shift "
            f"[{-100 * siglip.high:.1f}, {-100 * siglip.low:.1f}], p ≤ 0.010") in lines["siglip"]
    for model in MODELS:
        assert "the linear probe's drop is not distinguishable from zero-shot's (" in lines[model]
        assert "WiSE-FT logreg: alpha 0.5 beats both ends on the shift average" in lines[model]
        assert "WiSE-FT zsinit: no interior alpha beats both ends distinguishably" in lines[model]
        for shift in SHIFTS:
            assert f"[{shift}](models/{model}/{shift}/figures/robustness.png)" in section
    gain = 100 * (logreg.source.value - clip["zeroshot"].source.value)
    assert f"({gain:+.1f} points against zero-shot on shapes, " in lines["clip"]
    assert "![effective robustness on the shift average of shapes, one panel per model](figures/shift_shapes.png)" \
        in section
    with Image.open(root / "metrics" / "figures" / "shift_shapes.png") as image:
        assert image.format == "PNG" and image.width > 900  # two panels
    assert report.index("## Logistic probe") < report.index("## Distribution shift")


def test_results_csv_has_every_classifier_on_each_set_and_on_the_average(study):
    root, board, correct = study
    table = pd.read_csv(root / "metrics" / "results.csv", dtype=str, keep_default_na=False)
    assert list(table.columns)[:4] == ["model", "pretrained", "dataset", "shift"]
    assert set(table.loc[table["task"] != "distribution_shift", "shift"]) == {""}
    shift_rows = table[table["task"] == "distribution_shift"]
    assert set(zip(shift_rows["model"], shift_rows["dataset"])) == {(model, "shapes") for model in MODELS}
    assert list(dict.fromkeys(shift_rows["shift"])) == ["outline", "noisy", "average"]
    values = {(r["model"], r["shift"], r["classifier"], r["prompt"], r["fewshot_k"], r["alpha"], r["metric"]):
              tuple(float(r[c]) for c in ("value", "low", "high")) for r in shift_rows.to_dict("records")}
    assert len(values) == len(shift_rows)
    for model in MODELS:
        zsinit = json.loads((root / "metrics" / "models" / model / "shapes" / "zsinit.json").read_text())
        mix_alpha = str(next(p["mix"]["mean_alpha"] for p in zsinit["curve"] if p["label"] == "all"))
        for shift in SHIFTS:
            written = json.loads((root / "metrics" / "models" / model / shift / "shift.json").read_text())
            for row in written["classifiers"]:
                key = {"zeroshot/a_picture_of_a": ("zeroshot", "a_picture_of_a", "", ""),
                       OTHER: ("ensemble", "clip_80", "", ""), "fewshot/k=1": ("fewshot", "", "1", ""),
                       "fewshot/k=all": ("fewshot", "", "-1", ""), "zsinit/k=all": ("zsinit", "", "-1", ""),
                       "zsinit_mix/k=all": ("zsinit_mix", "", "-1", mix_alpha)}.get(
                    row["name"], (row["classifier"], "", "", "" if row.get("alpha") is None else str(row["alpha"])))
                for metric, field in (("acc1", "shift"), ("acc1_source", "source"), ("drop", "drop"),
                                      ("effective_robustness", "effective_robustness")):
                    assert values[(model, shift, *key, metric)] == tuple(row[field][c] for c in ("value", "low",
                                                                                                 "high"))
        assert values[(model, "outline", "template", "a_picture_of_a", "", "", "acc1")] == \
            values[(model, "outline", "zeroshot", "a_picture_of_a", "", "", "acc1")]  # the chosen one is both
        headline = board.shift["shapes"].models[model].classifiers
        for key, role in ((("zeroshot", "a_picture_of_a", "", ""), "zeroshot"), (("logreg", "", "", ""), "logreg"),
                          (("wiseft_zsinit", "", "", "0.5"), "wiseft_zsinit")):
            entry = headline[role]
            for metric, estimate in (("acc1", entry.shift), ("acc1_source", entry.source), ("drop", entry.drop),
                                     ("effective_robustness", entry.effective_robustness)):
                assert values[(model, "average", *key, metric)] == (estimate.value, estimate.low, estimate.high)
        # a classifier the leaderboard does not headline, on the average, recomputed here
        few = correct[model]["fewshot/k=1"]
        assert values[(model, "average", "fewshot", "", "1", "", "acc1")][0] == pytest.approx(
            (few["outline"].mean() + few["noisy"].mean()) / 2, abs=1e-6)
    rows_per_set = 4 * (len([r for r in ROWS if not r[5]]) + 1)  # the chosen zero-shot twice
    assert len(shift_rows) == len(MODELS) * 3 * rows_per_set


def test_a_stale_or_missing_predictions_file_names_the_shift_stage(study, tmp_path, monkeypatch):
    root, _, correct = study
    predictions = tmp_path / "predictions"
    shutil.copytree(root / "data" / "predictions", predictions)
    outputs = {"out": tmp_path / "leaderboard.json", "results": tmp_path / "results.csv",
               "report": tmp_path / "report.md", "figures": tmp_path / "figures"}
    changed = {name: dict(sets) for name, sets in correct["siglip"].items()}
    changed["logreg"]["outline"] = 1 - changed["logreg"]["outline"]
    save_predictions(predictions / "siglip" / "outline.npz", scores_on("outline", changed))
    with pytest.raises(UserError, match=r"the predictions of siglip on outline score logreg at .*, its shift.json "
                                        r".*: stale; rebuild it with `dvc repro --force --single-item "
                                        r"shift@siglip-outline`"):
        stage.main(stage_args(root, predictions=predictions, **outputs))
    (predictions / "siglip" / "outline.npz").unlink()
    monkeypatch.setenv("DVC_STAGE", "demo/dvc.yaml:leaderboard")
    with pytest.raises(UserError, match=r"outline.npz: not found.*`dvc repro --force --single-item "
                                        r"demo/dvc.yaml:shift@siglip-outline`"):
        stage.main(stage_args(root, predictions=predictions, **outputs))


def test_files_of_one_dataset_that_disagree_are_refused(study, tmp_path):
    root, _, correct = study
    predictions = tmp_path / "predictions"
    shutil.copytree(root / "data" / "predictions", predictions)
    outputs = {"out": tmp_path / "leaderboard.json", "results": tmp_path / "results.csv",
               "report": tmp_path / "report.md", "figures": tmp_path / "figures"}
    arrays = dict(np.load(predictions / "clip" / "noisy.npz"))
    row = [name for name, *_ in ROWS].index("fewshot/k=1")  # a row shift.json also reports
    arrays["source_correct"] = arrays["source_correct"].copy()
    arrays["source_correct"][row] = 1 - arrays["source_correct"][row]
    save_npz(predictions / "clip" / "noisy.npz", **arrays)
    with pytest.raises(UserError, match=r"the predictions of clip on noisy score fewshot/k=1 .*stale"):
        stage.main(stage_args(root, predictions=predictions, **outputs))
    arrays["source_correct"][row] = 1 - arrays["source_correct"][row]
    arrays["source_correct"][-1] = 1 - arrays["source_correct"][-1]  # a fit point: only the other file tells
    save_npz(predictions / "clip" / "noisy.npz", **arrays)
    with pytest.raises(UserError, match=r"the predictions of clip on noisy and on outline differ in their shapes "
                                        r"test images \(one is stale\): rebuild it with .*shift@clip-noisy`, or that "
                                        r"of outline"):
        stage.main(stage_args(root, predictions=predictions, **outputs))


def test_a_shift_set_of_no_dataset_is_one_line(study, tmp_path):
    root, _, _ = study
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(params_of({"outline": shift_entry("imagenet")})))
    with pytest.raises(UserError, match=r"shifts\.outline\.of.*'imagenet' is (no|not an) entry of datasets "
                                        r"\(shapes, tiles\)"):
        stage.main(stage_args(root, params=params, out=tmp_path / "leaderboard.json"))
