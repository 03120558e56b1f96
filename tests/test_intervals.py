"""Bootstrap intervals equal a plain numpy + sklearn reimplementation of the documented draw; McNemar's
p-values equal scipy's exact binomial test."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

from clip_study.errors import UserError
from clip_study.evaluation.intervals import (bootstrap_interval, bootstrap_scores, mcnemar, stratified_resamples,
                                             verdict)
from clip_study.evaluation.metrics import classification_metrics


def reference_indices(labels: np.ndarray, resamples: int, seed: int) -> list[np.ndarray]:
    """The draw as the docstring of stratified_resamples words it, written with loops."""
    classes = sorted(set(labels.tolist()))
    members = {c: [i for i in range(len(labels)) if labels[i] == c] for c in classes}
    slot_class = [c for c in classes for _ in members[c]]
    slot_rank = [rank for c in classes for rank in range(len(members[c]))]
    sizes = np.array([len(members[c]) for c in slot_class])
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(resamples):
        draws = rng.integers(0, sizes)
        assert len(draws) == len(slot_rank)
        drawn.append(np.array([members[c][d] for c, d in zip(slot_class, draws)]))
    return drawn


def reference_interval(labels, predictions, resamples, seed, confidence, num_classes):
    runs = np.atleast_2d(predictions)
    classes = list(range(num_classes))

    def scores(indices):
        top1 = np.mean([accuracy_score(labels[indices], run[indices]) for run in runs])
        f1 = np.mean([f1_score(labels[indices], run[indices], labels=classes, average="macro", zero_division=0)
                      for run in runs])
        return top1, f1

    per_resample = np.array([scores(indices) for indices in reference_indices(labels, resamples, seed)])
    tail = 100 * (1 - confidence) / 2
    point = scores(np.arange(len(labels)))
    expected = {}
    for column, name in enumerate(("top1", "macro_f1")):
        low, high = np.percentile(per_resample[:, column], [tail, 100 - tail])
        expected |= {name: point[column], f"{name}_low": low, f"{name}_high": high}
    return per_resample, expected


def noisy_classifier(seed: int, images: int = 240, classes: int = 7, runs: int | None = None):
    """Labels with unequal class sizes and predictions right ~60% of the time; the top class is never in the
    labels (only predicted), so C comes from the predictions."""
    rng = np.random.default_rng(seed)
    weights = np.linspace(1, 3, classes - 1)
    labels = rng.choice(classes - 1, size=images, p=weights / weights.sum())
    shape = (images,) if runs is None else (runs, images)
    predictions = np.where(rng.random(shape) < 0.6, labels, rng.integers(0, classes, shape))
    return labels, predictions


@pytest.mark.parametrize("runs", [None, 3], ids=["one-run", "three-runs"])
def test_interval_equals_a_loop_over_the_documented_draw_with_sklearn(runs):
    labels, predictions = noisy_classifier(seed=1, runs=runs)
    num_classes = int(max(labels.max(), predictions.max())) + 1
    assert num_classes == 7 and labels.max() == 5
    per_resample, expected = reference_interval(labels, predictions, resamples=150, seed=4, confidence=0.9,
                                                num_classes=num_classes)
    top1, macro_f1 = bootstrap_scores(labels, predictions, resamples=150, seed=4)
    np.testing.assert_allclose(top1, per_resample[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(macro_f1, per_resample[:, 1], rtol=0, atol=1e-9)
    interval = bootstrap_interval(labels, predictions, resamples=150, seed=4, confidence=0.9)
    assert interval == {name: pytest.approx(round(value, 6), abs=1e-9) for name, value in expected.items()}
    assert interval["top1_low"] < interval["top1"] < interval["top1_high"]
    assert interval["macro_f1_low"] < interval["macro_f1"] < interval["macro_f1_high"]


def test_point_macro_f1_equals_classification_metrics_and_num_classes_adds_unseen_classes():
    labels, predictions = noisy_classifier(seed=2)
    scores = np.eye(9)[predictions]  # 9 score columns: classes 7 and 8 neither tested nor predicted
    metrics = classification_metrics(labels, scores)
    interval = bootstrap_interval(labels, predictions, resamples=20, num_classes=9)
    assert interval["top1"] == metrics["top1"] and interval["macro_f1"] == metrics["macro_f1"]
    assert bootstrap_interval(labels, predictions, resamples=20)["macro_f1"] == pytest.approx(
        metrics["macro_f1"] * 9 / 7, abs=1e-6)


def test_a_seed_gives_the_same_interval_and_another_seed_another():
    labels, predictions = noisy_classifier(seed=3)
    first = bootstrap_interval(labels, predictions, resamples=200, seed=0)
    assert bootstrap_interval(labels, predictions, resamples=200, seed=0) == first
    assert bootstrap_interval(labels, predictions, resamples=200, seed=1) != first


def test_resamples_keep_each_class_count_and_draw_only_within_the_class():
    labels = np.array([2, 0, 2, 1, 0, 2, 2, 5, 0, 2])  # classes 3 and 4 absent
    drawn = list(stratified_resamples(labels, resamples=300, seed=7))
    assert len(drawn) == 300
    for indices in drawn:
        assert indices.shape == labels.shape
        assert np.array_equal(np.bincount(labels[indices]), np.bincount(labels))
        assert np.array_equal(labels[indices], np.sort(labels))  # slots in class-grouped order
    pooled = np.concatenate(drawn)
    assert set(pooled[labels[pooled] == 2].tolist()) == {0, 2, 5, 6, 9}  # every image of a class gets drawn
    assert np.all(pooled[np.sort(labels)[np.arange(len(pooled)) % len(labels)] == 5] == 7)
    assert not all(np.array_equal(drawn[0], other) for other in drawn[1:])


@pytest.mark.parametrize("b, c", [(0, 0), (0, 5), (5, 0), (7, 7), (3, 20), (20, 3), (120, 160), (2000, 2100),
                                  (1, 0), (24000, 25000)])
def test_mcnemar_equals_scipy_exact_binomial_test(b, c):
    both_right, both_wrong = 11, 4
    correct_a = np.array([True] * b + [False] * c + [True] * both_right + [False] * both_wrong)
    correct_b = np.array([False] * b + [True] * c + [True] * both_right + [False] * both_wrong)
    order = np.random.default_rng(b + c).permutation(len(correct_a))
    result = mcnemar(correct_a[order], correct_b[order])
    assert (result["a_only"], result["b_only"]) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert result["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert 0 <= result["p_value"] <= 1


def test_mcnemar_p_underflows_to_no_wrong_value_at_50000_images():
    result = mcnemar(np.ones(50_000, bool), np.zeros(50_000, bool))
    assert result["p_value"] == 2 * 0.5 ** 50_000  # 0.0 in floats, as it must be: far below any alpha
    assert mcnemar(np.arange(50_000) % 2 == 0, np.arange(50_000) % 2 == 1)["p_value"] == 1.0


def test_verdict_in_words():
    assert verdict({"a_only": 30, "b_only": 10, "p_value": 0.0021}, 500) == "better, p = 0.0021"
    assert verdict({"a_only": 10, "b_only": 25, "p_value": 0.031}, 500) == "worse, p = 0.031"
    assert verdict({"a_only": 12, "b_only": 9, "p_value": 0.41245}, 980) == \
        "not distinguishable at 980 test images (p = 0.41)"
    assert verdict({"a_only": 300, "b_only": 100, "p_value": 2e-9}, 980) == "better, p < 0.001"
    assert verdict({"a_only": 12, "b_only": 9, "p_value": 0.041}, 980, alpha=0.01) == \
        "not distinguishable at 980 test images (p = 0.041)"
    result = mcnemar(np.arange(980) < 700, np.arange(980) < 640)  # A right on 60 images B misses, no other way
    assert verdict(result, 980) == "better, p < 0.001"


@pytest.mark.parametrize("call, message", [
    (lambda: list(stratified_resamples(np.array([0, 1]), 0, 0)), "resamples = 0 must be a whole number"),
    (lambda: stratified_resamples(np.array([0, -1]), 5, 0), "must be a non-empty array of class indices"),
    (lambda: stratified_resamples(np.array([0.0, 1.0]), 5, 0), "must be a non-empty array of class indices"),
    (lambda: bootstrap_scores(np.array([0, 1]), np.array([0, 1]), resamples=-3), "resamples = -3"),
    (lambda: bootstrap_interval(np.array([0, 1]), np.array([0, 1]), resamples=2.5), "resamples = 2.5"),
    (lambda: bootstrap_interval(np.array([0, 1]), np.array([0, 1]), confidence=95), "confidence = 95 must be"),
    (lambda: bootstrap_interval(np.array([0, 1]), np.array([0, 1]), confidence=1.0), "confidence = 1.0 must be"),
    (lambda: bootstrap_interval(np.array([0, 1]), np.array([0, 1, 1])), "predictions of shape (3,) do not fit labels "
                                                                        "of shape (2,)"),
    (lambda: bootstrap_interval(np.array([0, 1]), np.zeros((2, 3), int)), "predictions of shape (2, 3)"),
    (lambda: bootstrap_interval(np.array([0, 4]), np.array([0, 1]), num_classes=3), "num_classes = 3 must be a whole "
                                                                                    "number covering every class"),
    (lambda: mcnemar(np.ones(3, bool), np.ones(4, bool)), "correct_a has 3 images and correct_b 4"),
    (lambda: mcnemar(np.ones(3, int), np.ones(3, bool)), "correct_a = array([1, 1, 1]) must be a 1-D boolean"),
    (lambda: verdict({"a_only": 1, "b_only": 0, "p_value": 1.0}, 10, alpha=5), "alpha = 5 must be"),
    (lambda: verdict({"a_only": 1, "b_only": 0, "p_value": 1.0}, 0), "num_images = 0 must be"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_bad_inputs_name_the_value_and_the_fix(call, message):
    with pytest.raises(UserError) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("module", ["intervals", "calibration"])
def test_the_module_imports_neither_scipy_nor_sklearn_nor_torch(module):
    """Stages that only score embeddings start fast: the interval and calibration code is numpy only."""
    code = (f"import sys, clip_study.evaluation.{module}; "
            "print(sorted(m for m in ('scipy', 'sklearn', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"
