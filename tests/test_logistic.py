"""Tests for the logistic probe (clip_study.evaluation.logistic) and the logreg and fewshot stages, on small synthetic
features (a few seconds in all)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest
import yaml

from clip_study.data import features, subset
from clip_study.errors import UserError
from clip_study.evaluation import logistic
from clip_study.evaluation.fewshot import few_shot_indices
from clip_study.evaluation.heads import load_heads
from clip_study.files import load_npz, read_json, write_json
from stages import fewshot, logreg

LOGREG = {"C_min": 0.01, "C_max": 100.0, "C_steps": 5, "val_fraction": 0.25, "seed": 0}
FEWSHOT = {"shots": [1, 2, 4, 50], "seeds": 3, "seed": 0}
EVALUATION = {"val_fraction": 0.2, "resamples": 200, "confidence": 0.95, "seed": 0, "calibration_bins": 10}


def run_stage(main, *argv: str) -> None:
    main(list(argv))


def noisy_imbalanced(n: int, seed: int, flip: float) -> tuple[np.ndarray, np.ndarray]:
    """Two classes (70/30), one informative dimension among 30 of noise, ``flip`` of the labels flipped.

    Too small a C predicts the majority class (the intercept is not penalised), too large a C fits the
    flipped labels through the noise dimensions: a middle C wins on clean validation labels.
    """
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 10 < 3).astype(np.int64)
    x = np.concatenate([(2 * y - 1)[:, None] * 2.0 + rng.normal(size=(n, 1)), rng.normal(size=(n, 30))], axis=1)
    return x.astype(np.float32), np.where(rng.random(n) < flip, 1 - y, y)


def clusters(per_class: int, num_classes: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around one axis per class: easy, not perfectly separable."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), per_class)
    x = 3.0 * np.eye(dim)[y] + rng.normal(scale=1.5, size=(len(y), dim)) + 2.0
    return x.astype(np.float32), y


def test_sweep_picks_the_C_with_the_best_validation_top1():
    train_x, train_y = noisy_imbalanced(30, seed=1, flip=0.2)
    val_x, val_y = noisy_imbalanced(2000, seed=101, flip=0.0)
    Cs = np.logspace(-3, 3, 7)
    sweep, models = logistic.sweep_C(train_x, train_y, val_x, val_y, Cs, seed=0)
    assert [row["C"] for row in sweep] == pytest.approx(Cs) and [model.C for model in models] == pytest.approx(Cs)
    assert [row["log10_C"] for row in sweep] == pytest.approx(np.arange(-3, 4))
    top1 = np.array([row["val_top1"] for row in sweep])
    assert 0 < top1.argmax() < len(Cs) - 1  # a middle C wins, neither end of the grid
    assert top1.max() > max(top1[0], top1[-1]) + 0.05
    assert logistic.best_C(sweep) == sweep[int(top1.argmax())]["C"]


def test_best_C_breaks_ties_towards_the_smaller_C():
    sweep = [{"C": 0.1, "val_top1": 0.8}, {"C": 1.0, "val_top1": 0.9}, {"C": 10.0, "val_top1": 0.9}]
    assert logistic.best_C(sweep) == 1.0
    assert logistic.best_C(sweep[::-1]) == 1.0


@pytest.mark.filterwarnings("error")
def test_fit_logistic_learns_a_separable_problem():
    x, y = clusters(per_class=10, num_classes=3, dim=3)
    x[:, :3] = 5.0 * np.eye(3)[y] + 0.1 * x[:, :3]  # well apart
    model = logistic.fit_logistic(x, y, C=10.0, seed=0)
    scores = logistic.decision_scores(model, x * 7.0, num_classes=3)  # scale-free: features are normalised
    assert scores.shape == (30, 3) and scores.dtype == np.float32
    assert (scores.argmax(axis=1) == y).all()


def test_decision_scores_cover_every_class():
    x, y = clusters(per_class=5, num_classes=3)
    binary = logistic.fit_logistic(x[y < 2], y[y < 2], C=1.0, seed=0)
    scores = logistic.decision_scores(binary, x, num_classes=3)  # two classes seen, three scored
    assert scores.shape == (15, 3)
    assert (scores[:, 2] < scores[:, :2].min(axis=1)).all()
    assert (scores[y < 2].argmax(axis=1) == y[y < 2]).mean() > 0.8


@pytest.mark.parametrize("seen", [(0, 2), (0, 2, 3), (0, 1, 2, 3)], ids=["two classes", "one absent", "all"])
def test_the_head_of_a_probe_scores_as_its_decision_scores(seen):
    """sklearn's two-class single column split in halves, a class the fit never saw below every other."""
    x, y = clusters(per_class=10, num_classes=4, seed=3)
    kept = np.isin(y, seen)
    model = logistic.fit_logistic(x[kept], y[kept], C=1.0, seed=0)
    scores, head = logistic.decision_scores(model, x, num_classes=4), logistic.linear_head(model, num_classes=4)
    assert head.normalize and head.weights.shape == (4, 8) and head.bias.shape == (4,)
    np.testing.assert_allclose(head.logits(x)[:, seen], scores[:, seen], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(head.predict(x), scores.argmax(axis=1))
    absent = [c for c in range(4) if c not in seen]
    assert (head.weights[absent] == 0).all()
    anything = np.random.default_rng(0).normal(size=(2000, 8)) * 10  # any image, not only these: below every time
    logits = head.logits(anything)
    assert (logits[:, absent].max(axis=1, initial=-np.inf) < logits[:, seen].min(axis=1)).all()


def test_few_shot_indices_take_k_per_class_seeded():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    indices = few_shot_indices(labels, 3, seed=0)
    assert np.bincount(labels[indices]).tolist() == [3, 3, 2]  # a class with fewer gives all it has
    assert len(set(indices.tolist())) == len(indices) and (np.diff(indices) > 0).all()
    assert np.array_equal(indices, few_shot_indices(labels, 3, seed=0))
    assert not np.array_equal(indices, few_shot_indices(labels, 3, seed=1))
    assert np.array_equal(few_shot_indices(labels, 10, seed=0), np.arange(len(labels)))
    for k in (0, -1, 1.5):
        with pytest.raises(UserError, match="k = "):
            few_shot_indices(labels, k, seed=0)


def test_validation_split_is_stratified_and_disjoint():
    labels = np.repeat(np.arange(4), 10)
    fit, val = subset.validation_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val]).tolist() == [2, 2, 2, 2]
    assert sorted([*fit, *val]) == list(range(40))
    with pytest.raises(UserError, match="a validation fraction of 1.0 must be between 0 and 1"):
        subset.validation_split(labels, 1.0, seed=0)
    with pytest.raises(UserError, match="cannot carve a stratified validation split"):
        subset.validation_split(labels, 0.01, seed=0)  # fewer validation images than classes


@pytest.fixture
def study(tmp_path) -> Path:
    """Features of 4 classes (20 train, 10 test images each), classes.json and params."""
    for split, per_class, seed in (("train", 20, 0), ("test", 10, 1)):
        features.save_features(tmp_path / "features" / f"{split}.npz", *clusters(per_class, seed=seed))
    write_json(tmp_path / "subset" / "classes.json", [{"id": f"c{i}", "name": f"class {i}"} for i in range(4)])
    params = {"logreg": LOGREG, "fewshot": FEWSHOT, "evaluation": EVALUATION}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def run_logreg(study: Path) -> None:
    run_stage(logreg.main, "--params", str(study / "params.yaml"), "--features", str(study / "features"),
              "--subset", str(study / "subset"), "--out", str(study / "logreg"),
              "--metrics", str(study / "logreg.json"), "--sweep", str(study / "sweep.json"),
              "--confusion", str(study / "confusion.json"), "--heads", str(study / "heads" / "logreg.npz"))


def run_fewshot(study: Path) -> None:
    run_stage(fewshot.main, "--params", str(study / "params.yaml"), "--features", str(study / "features"),
              "--logreg-metrics", str(study / "logreg.json"),
              "--metrics", str(study / "fewshot.json"), "--curve", str(study / "curve.json"),
              "--heads", str(study / "heads" / "fewshot.npz"))


@pytest.mark.filterwarnings("error")
def test_logreg_and_fewshot_stages_end_to_end(study):
    run_logreg(study)
    metrics = read_json(study / "logreg.json")
    assert list(metrics) == ["num_classes", "num_train_images", "num_test_images", "C", "val_top1",
                             "top1", "top5", "macro_f1", "mean_per_class_recall", "top1_low", "top1_high",
                             "macro_f1_low", "macro_f1_high", "calibration"]
    assert metrics["top1_low"] <= metrics["top1"] <= metrics["top1_high"]
    assert metrics["calibration"]["bins"] == 10 and metrics["calibration"]["temperature"] > 0
    assert (metrics["num_classes"], metrics["num_train_images"], metrics["num_test_images"]) == (4, 80, 40)
    sweep = read_json(study / "sweep.json", expect=list)
    assert [row["C"] for row in sweep] == pytest.approx(np.logspace(-2, 2, 5))
    assert metrics["C"] == logistic.best_C(sweep)
    assert metrics["val_top1"] == max(row["val_top1"] for row in sweep)
    assert metrics["top1"] > 0.7 and metrics["top5"] == 1.0
    scores = load_npz(study / "logreg" / "test_predictions.npz")["scores"]
    assert scores.shape == (40, 4) and scores.dtype == np.float32
    confusion = read_json(study / "confusion.json", expect=list)
    assert len(confusion) == 40 and confusion[0]["actual"] == "class 0" and confusion[-1]["actual"] == "class 3"
    assert {row["predicted"] for row in confusion} <= {f"class {i}" for i in range(4)}
    assert np.mean([row["actual"] == row["predicted"] for row in confusion]) == pytest.approx(metrics["top1"])

    # the heads file: the refitted probe, then every probe of the sweep, each giving its saved test predictions
    (train_x, train_y), (test_x, test_y) = features.load_splits(study / "features")
    fit, val = subset.validation_split(train_y, LOGREG["val_fraction"], LOGREG["seed"])
    heads = load_heads(study / "heads" / "logreg.npz")
    np.testing.assert_array_equal(heads.labels, test_y)
    np.testing.assert_array_equal(heads.validation, val)
    Cs = [row["C"] for row in sweep]
    assert heads.info == [{"name": "logreg", "classifier": "logreg", "C": metrics["C"]},
                          *({"name": f"logreg/C={C:.4g}", "classifier": "logreg_sweep", "C": C,
                             "chosen": C == metrics["C"]} for C in Cs)]
    for head, predicted in zip(heads.heads, heads.predictions):
        assert head.normalize and head.weights.shape == (4, 8)
        np.testing.assert_array_equal(head.predict(test_x), predicted)
    np.testing.assert_array_equal(heads.predictions[0], load_npz(study / "logreg" / "test_predictions.npz")["chosen"])
    for C, predicted in zip(Cs, heads.predictions[1:]):  # fitted without the validation images
        model = logistic.fit_logistic(train_x[fit], train_y[fit], C, LOGREG["seed"])
        np.testing.assert_array_equal(predicted, logistic.decision_scores(model, test_x, 4).argmax(axis=1))

    run_fewshot(study)
    result = read_json(study / "fewshot.json")
    assert (result["num_classes"], result["C"]) == (4, metrics["C"])
    curve = result["curve"]
    assert [(row["k"], row["label"], row["runs"]) for row in curve] == [
        (1, "1", 3), (2, "2", 3), (4, "4", 3), (20, "all", 1)]  # 50 >= 20 per class: it is the "all" point
    for row in curve:
        assert row["min_top1"] <= row["mean_top1"] <= row["max_top1"] and row["std_top1"] >= 0
        assert row["top1_low"] <= row["mean_top1"] <= row["top1_high"]
    assert curve[-1]["mean_top1"] == metrics["top1"]  # same C, same train images, same test set
    assert curve[-1]["std_top1"] == 0
    shots = load_heads(study / "heads" / "fewshot.npz")
    runs = [(k, str(k), seed) for k in (1, 2, 4) for seed in range(3)] + [(20, "all", 0)]
    assert shots.info == [{"name": f"fewshot/k={label}/seed={seed}", "classifier": "fewshot", "k": k,
                           "label": label, "seed": seed} for k, label, seed in runs]
    assert shots.validation is None
    np.testing.assert_array_equal(shots.labels, test_y)
    for head, predicted in zip(shots.heads, shots.predictions):
        np.testing.assert_array_equal(head.predict(test_x), predicted)
    for row, first in zip(curve, (0, 3, 6, 9)):  # each point's runs, in order: the curve's top-1s
        top1 = (shots.predictions[first:first + row["runs"]] == test_y).mean(axis=1)
        assert (row["min_top1"], row["max_top1"]) == (round(top1.min(), 6), round(top1.max(), 6))
    np.testing.assert_array_equal(shots.predictions[-1], heads.predictions[0])  # "all": the logreg probe again
    indices = few_shot_indices(train_y, 2, seed=1)
    model = logistic.fit_logistic(train_x[indices], train_y[indices], metrics["C"], 1)
    _, _, predicted = shots.named("fewshot/k=2/seed=1")
    np.testing.assert_array_equal(predicted, logistic.decision_scores(model, test_x, 4).argmax(axis=1))
    assert read_json(study / "curve.json", expect=list) == [
        {key: row[key] for key in ("k", "mean_top1", "min_top1", "max_top1", "top1_low", "top1_high")} for row in curve]


@pytest.mark.parametrize("section, key, value, message", [
    ("logreg", "C_min", 1000.0, "logreg.C_min"),
    ("logreg", "C_steps", 0, "logreg.C_steps"),
    ("logreg", "val_fraction", 1.5, "logreg.val_fraction"),
    ("fewshot", "shots", [0, 2], "fewshot.shots"),
    ("fewshot", "shots", 4, "fewshot.shots"),
    ("fewshot", "seeds", 0, "fewshot.seeds"),
])
def test_bad_params_are_one_line_errors(study, section, key, value, message):
    run_logreg(study)
    params = {"logreg": dict(LOGREG), "fewshot": dict(FEWSHOT), "evaluation": dict(EVALUATION)}
    params[section][key] = value
    (study / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(UserError, match=message) as error:
        (run_logreg if section == "logreg" else run_fewshot)(study)
    assert "\n" not in str(error.value)
