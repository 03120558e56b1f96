"""stages/shift.py end to end on constructed heads files and shift features: shift.json's values against an
independent computation, the plot data, the predictions file the leaderboard reads, the figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy.special import expit, logit
from scipy.stats import linregress

from clip_study.data.features import save_features
from clip_study.errors import UserError
from clip_study.evaluation.heads import Heads, LinearHead, load_heads, mix, save_heads
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.shift import evaluate_shift
from clip_study.files import load_npz, read_json, write_json
from clip_study.metrics_files.shift import FILES, ShiftAlphaRow, ShiftMetrics
from clip_study.reporting.shift import load_predictions
from stages import shift as shift_stage
from tests.conftest import one_dataset

DIM, CLASSES = 4, 6
MATCHES = [[0], [2, 4]]  # shift class 0 is source class 0; shift class 1 is source 2 or 4 (many-to-one)
ALPHAS = [round(0.1 * i, 1) for i in range(11)]
SHIFT = {"of": "src", "source": "sketches", "split": "train", "max_per_class": None, "seed": 0, "class_names": None,
         "class_map": None, "on_bad_image": "skip"}
PARAMS = {"datasets": one_dataset("images", name="src"), "shifts": {"sketch": SHIFT},
          "evaluation": {"val_fraction": 0.25, "resamples": 200, "confidence": 0.9, "seed": 3, "calibration_bins": 10}}


def directions(degrees: float = 0.0) -> np.ndarray:
    """(6, 4) unit class directions at 0, 60, ..., 300 degrees (+ ``degrees``) in the first two dimensions."""
    radians = np.deg2rad(np.arange(CLASSES) * 60 + degrees)
    return np.stack([np.cos(radians), np.sin(radians), np.zeros(CLASSES), np.zeros(CLASSES)], axis=1)


def images(angles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    radians = np.deg2rad(angles)
    return np.stack([np.cos(radians), np.sin(radians), *rng.normal(0, 0.2, (2, len(angles)))], axis=1)


def head(rng: np.random.Generator, noise: float, degrees: float = 0.0) -> LinearHead:
    return LinearHead(10 * directions(degrees) + rng.normal(0, noise, (CLASSES, DIM)), np.zeros(CLASSES), True)


def write_heads(path, entries: list[tuple[LinearHead, dict]], x: np.ndarray, y: np.ndarray) -> None:
    heads = [h for h, _ in entries]
    save_heads(path, Heads(heads, [info for _, info in entries], np.stack([h.predict(x) for h in heads]), y))


@pytest.fixture
def study(tmp_path):
    rng = np.random.default_rng(0)
    source_y = np.repeat(np.arange(CLASSES), 20)
    source_x = images(source_y * 60 + rng.uniform(-45, 45, len(source_y)), rng)
    shift_y = np.repeat([0, 1], 30)
    centres = np.where(shift_y == 0, 0, rng.choice([120, 240], len(shift_y)))
    shift_x = images(centres + rng.uniform(-75, 75, len(shift_y)), rng)

    folder = tmp_path / "heads" / "src"
    photo = LinearHead(10 * directions(), np.zeros(CLASSES), True)
    logreg = head(rng, 1.0)
    zsinit_runs = [head(rng, 2.0) for _ in range(2)]
    write_heads(folder / "zeroshot.npz", [(photo, {"name": "zeroshot/photo", "classifier": "zeroshot", "key": "photo",
                                                   "chosen": True}),
                                          (head(rng, 0, 15), {"name": "zeroshot/plain", "classifier": "zeroshot",
                                                              "key": "plain", "chosen": False})], source_x, source_y)
    probe = LinearHead(directions(5), rng.normal(0, 0.1, CLASSES), False)
    write_heads(folder / "probe.npz", [(probe, {"name": "probe", "classifier": "probe", "epoch": 3})], source_x,
                source_y)
    sweep = [(head(rng, noise), {"name": f"logreg/C={c:.4g}", "classifier": "logreg_sweep", "C": c, "chosen": c == 1})
             for c, noise in ((0.01, 6.0), (1.0, 3.0), (100.0, 1.5))]
    write_heads(folder / "logreg.npz", [(logreg, {"name": "logreg", "classifier": "logreg", "C": 1.0}), *sweep],
                source_x, source_y)
    fewshot = [(head(rng, noise), {"name": f"fewshot/k={label}/seed={seed}", "classifier": "fewshot", "k": k,
                                   "label": label, "seed": seed})
               for k, label, seed, noise in ((1, "1", 0, 8.0), (1, "1", 1, 8.0), (20, "all", 0, 2.0))]
    write_heads(folder / "fewshot.npz", fewshot, source_x, source_y)
    write_heads(folder / "zsinit.npz",
                [(h, {"name": f"zsinit/k=1/seed={s}", "classifier": "zsinit", "k": 1, "label": "1", "seed": s})
                 for s, h in enumerate(zsinit_runs)] +
                [(mix(photo, h, 0.5), {"name": f"zsinit_mix/k=1/seed={s}", "classifier": "zsinit_mix", "k": 1,
                                       "label": "1", "seed": s, "alpha": 0.5}) for s, h in enumerate(zsinit_runs)],
                source_x, source_y)
    write_heads(folder / "wiseft.npz",
                [(mix(photo, fitted, a), {"name": f"{kind}/alpha={a}", "classifier": kind, "alpha": a,
                                          "chosen": a == chosen})
                 for kind, fitted, chosen in (("wiseft_logreg", logreg, 0.5), ("wiseft_zsinit", zsinit_runs[0], 0.3))
                 for a in ALPHAS], source_x, source_y)

    subset = tmp_path / "subset"
    write_json(subset / "classes.json", [{"id": "a", "name": "plane"}, {"id": "b", "name": "ship"}])
    write_json(subset / "class_map.json", {"of": "src", "source_classes": CLASSES, "matches": MATCHES})
    save_features(tmp_path / "features" / "test.npz", shift_x, shift_y)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return tmp_path, shift_x, shift_y, photo


def run_stage(root, *extra: str) -> None:
    shift_stage.main(["--params", str(root / "params.yaml"), "--model", "clip", "--shift", "sketch",
                      "--heads", str(root / "heads"), "--subset", str(root / "subset"),
                      "--features", str(root / "features"), "--metrics", str(root / "out" / "shift.json"),
                      "--curve", str(root / "out" / "shift_alpha.json"), "--figures", str(root / "out" / "figures"),
                      "--predictions", str(root / "predictions" / "sketch.npz"), *extra])


def restricted_accuracy(h: LinearHead, x: np.ndarray, y: np.ndarray) -> float:
    """Independently of the library: cosine logits, dropped classes at -inf, a prediction right if the class map
    lists it for the image's shift class."""
    logits = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ h.weights.T + h.bias
    kept = np.isin(np.arange(CLASSES), [c for m in MATCHES for c in m])
    predicted = np.where(kept, logits, -np.inf).argmax(axis=1)
    return float(np.mean([p in MATCHES[label] for p, label in zip(predicted, y)]))


def test_the_shift_stage_reports_every_classifier_the_fit_and_the_alpha_curves(study):
    root, shift_x, shift_y, photo = study
    run_stage(root)
    metrics = FILES[0].read(root / "out" / "shift.json")
    assert isinstance(metrics, ShiftMetrics)
    assert (metrics.shift, metrics.source, metrics.num_images, metrics.num_source_images) == ("sketch", "src", 60, 120)
    assert (metrics.num_shift_classes, metrics.num_source_classes, metrics.matched_source_classes) == (2, 6, 3)
    assert (metrics.resamples, metrics.confidence, metrics.seed, metrics.reference) == (200, 0.9, 3, "zeroshot/photo")
    rows = {row.name: row for row in metrics.classifiers}
    assert list(rows) == ["zeroshot/photo", "zeroshot/plain", "probe", "logreg", "fewshot/k=1", "fewshot/k=all",
                          "zsinit/k=1", "zsinit_mix/k=1", *(f"wiseft_logreg/alpha={a}" for a in ALPHAS),
                          *(f"wiseft_zsinit/alpha={a}" for a in ALPHAS)]
    assert [name for name, row in rows.items() if row.chosen] == ["zeroshot/photo", "wiseft_logreg/alpha=0.5",
                                                                   "wiseft_zsinit/alpha=0.3"]
    assert (rows["fewshot/k=1"].runs, rows["fewshot/k=1"].k, rows["zsinit_mix/k=1"].runs) == (2, "1", 2)
    assert rows["wiseft_zsinit/alpha=0.3"].alpha == 0.3 and rows["probe"].k is None and rows["probe"].alpha is None

    zero_shot = rows["zeroshot/photo"]
    assert zero_shot.shift.value == round(restricted_accuracy(photo, shift_x, shift_y), 6)
    assert zero_shot.shift.low <= zero_shot.shift.value <= zero_shot.shift.high
    assert zero_shot.drop.value == pytest.approx(zero_shot.source.value - zero_shot.shift.value, abs=2e-6)
    assert zero_shot.drop_vs_zero_shot.value == 0 and zero_shot.drop_vs_zero_shot.p_value == 1
    assert rows["wiseft_logreg/alpha=0.0"].shift.value == zero_shot.shift.value  # alpha 0 is zero-shot
    fewshot = load_heads(root / "heads" / "src" / "fewshot.npz")
    runs = [restricted_accuracy(h, shift_x, shift_y) for h in fewshot.heads[:2]]
    assert rows["fewshot/k=1"].shift.value == round(float(np.mean(runs)), 6)
    source_runs = [float(np.mean(p == fewshot.labels)) for p in fewshot.predictions[:2]]
    assert rows["fewshot/k=1"].source.value == round(float(np.mean(source_runs)), 6)

    fit = metrics.fit  # every few-shot run and every C of the sweep
    assert [p.name for p in fit.points] == ["logreg/C=0.01", "logreg/C=1", "logreg/C=100", "fewshot/k=1/seed=0",
                                            "fewshot/k=1/seed=1", "fewshot/k=all/seed=0"] and fit.count == 6
    assert fit.points[3].shift_top1 == round(runs[0], 6)
    x = logit(np.clip([p.source_top1 for p in fit.points], 0.5 / 120, 1 - 0.5 / 120))
    y = logit(np.clip([p.shift_top1 for p in fit.points], 0.5 / 60, 1 - 0.5 / 60))
    line = linregress(x, y)
    assert (fit.slope.value, fit.intercept.value) == pytest.approx((line.slope, line.intercept), abs=1e-5)
    probe = rows["probe"]
    expected = probe.shift.value - expit(line.slope * logit(probe.source.value) + line.intercept)
    assert probe.effective_robustness.value == pytest.approx(expected, abs=1e-5)
    assert (fit.source_clip, fit.shift_clip) == (round(0.5 / 120, 9), round(0.5 / 60, 9))

    assert [c.curve for c in metrics.curves] == ["wiseft_logreg", "wiseft_zsinit"]
    for check in metrics.curves:
        shift_top1 = [rows[f"{check.curve}/alpha={a}"].shift.value for a in ALPHAS]
        assert check.best_alpha == ALPHAS[1 + int(np.argmax(shift_top1[1:-1]))]
        assert check.best_shift_top1 == max(shift_top1[1:-1]) and check.ends_shift_top1 == max(shift_top1[0],
                                                                                               shift_top1[-1])
        assert check.difference.value == pytest.approx(check.best_shift_top1 - check.ends_shift_top1, abs=2e-6)
        assert check.beats_both_ends == (check.difference.low > 0)

    curve = FILES[1].read(root / "out" / "shift_alpha.json")
    assert all(isinstance(row, ShiftAlphaRow) for row in curve) and len(curve) == 22
    assert [(r.curve, r.alpha, r.source_top1, r.shift_top1) for r in curve] == \
        [(kind, a, rows[f"{kind}/alpha={a}"].source.value, rows[f"{kind}/alpha={a}"].shift.value)
         for kind in ("wiseft_logreg", "wiseft_zsinit") for a in ALPHAS]
    assert (root / "out" / "figures" / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_predictions_file_lets_the_leaderboard_rerun_the_evaluation(study):
    root, shift_x, shift_y, photo = study
    run_stage(root)
    arrays = load_npz(root / "predictions" / "sketch.npz")
    names = json.loads(arrays["names"].tobytes().decode())
    kinds = json.loads(arrays["kinds"].tobytes().decode())
    assert len(names) == len(kinds) == 30 + 6
    assert [name for name, is_reference in zip(names, arrays["reference"]) if is_reference] == ["zeroshot/photo"]
    assert [n for n, f in zip(names, arrays["fit_set"]) if f][0] == "logreg/C=0.01" and arrays["fit_set"].sum() == 6
    assert kinds[names.index("logreg/C=1")] == "logreg_sweep" and kinds[names.index("fewshot/k=1")] == "fewshot"
    assert arrays["source_correct"].shape == (36, 120) and arrays["shift_correct"].shape == (36, 60)
    assert arrays["source_correct"].dtype == np.float32 and arrays["shift_labels"].tolist() == shift_y.tolist()
    row = names.index("fewshot/k=1")
    assert set(np.unique(arrays["shift_correct"][row])) <= {0, 0.5, 1}  # two runs averaged, image by image

    predictions = load_predictions(root / "predictions" / "sketch.npz", fix="rerun")
    again = evaluate_shift(predictions.source, [predictions.shift], Bootstrap(resamples=200, seed=3, confidence=0.9),
                           reference=predictions.reference, fit_set=predictions.fit_set)
    written = {r["name"]: r for r in read_json(root / "out" / "shift.json")["classifiers"]}
    for name, entry in written.items():
        i = names.index(name)
        assert [round(v, 6) for v in again.effective_robustness.at(i)] == \
            [entry["effective_robustness"][k] for k in ("value", "low", "high")]
        assert round(float(again.p_value[i]), 6) == entry["drop_vs_zero_shot"]["p_value"]


def test_mistakes_in_the_inputs_are_one_line_errors(study):
    root = study[0]
    write_json(root / "subset" / "class_map.json", {"of": "other", "source_classes": CLASSES, "matches": MATCHES})
    with pytest.raises(UserError, match="shifts.sketch.of is 'src' but .* maps to 'other'"):
        run_stage(root)
    write_json(root / "subset" / "class_map.json", {"of": "src", "source_classes": 5, "matches": MATCHES})
    with pytest.raises(UserError, match="counts 5 classes of src, its heads 6"):
        run_stage(root)
    (root / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "shifts": {"other": SHIFT}}))
    with pytest.raises(UserError, match="--shift sketch: not among the shifts"):
        run_stage(root)
