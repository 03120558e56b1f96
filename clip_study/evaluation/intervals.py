"""How sure a test score is: stratified bootstrap intervals of top-1 and macro-F1, and McNemar's exact test
for two classifiers on the same test images.

A test set of a few hundred images moves top-1 by a point or more between equally good classifiers, so a
report that ranks classifiers should say how wide that noise is. Pure numpy and math: no scipy, so a stage
that only scores embeddings starts fast (tests/test_intervals.py checks both against scipy and sklearn).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from clip_study.errors import UserError, shown


def stratified_resamples(labels: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """``resamples`` bootstrap index arrays of length N, each drawn with replacement within each class, so
    every class keeps its test count (a resample never loses a rare class).

    The draw, for an independent reimplementation: ``rng = np.random.default_rng(seed)``; the N image slots
    are grouped by class (classes ascending, a class's images in ascending index order); per resample ONE
    call ``draws = rng.integers(0, sizes)``, where ``sizes[j]`` is the image count of slot j's class; slot j
    of class c takes class c's ``draws[j]``-th image. The yielded array lists the images in slot order.
    One resample at a time: O(N) memory however many resamples.
    """
    labels = _class_labels(labels, "labels")
    if labels.ndim != 1:
        raise UserError(f"labels of shape {labels.shape} must be one class index per test image (1-D)")
    _check_resamples(resamples)
    return _resamples(labels, resamples, seed)


def _resamples(labels: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The generator behind ``stratified_resamples``, apart so that bad arguments raise at the call."""
    slots = np.argsort(labels, kind="stable")  # image index of each slot, class-grouped
    counts = np.bincount(labels)
    first_slot = np.cumsum(counts) - counts  # where each class's slots begin
    slot_classes = labels[slots]
    sizes, starts = counts[slot_classes], first_slot[slot_classes]
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield slots[starts + rng.integers(0, sizes)]


def bootstrap_scores(labels: np.ndarray, predictions: np.ndarray, resamples: int = 1000, seed: int = 0,
                     num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 and macro-F1 of each stratified resample (``stratified_resamples``), unrounded: two
    (resamples,) arrays, the distribution ``bootstrap_interval`` reads its percentiles from.

    ``predictions`` is (N,) or (R, N) for R runs of one classifier on the same images (few-shot seeds): a
    resample's statistic is then the mean over the runs, so the interval covers the test images' noise
    around the mean classifier.
    """
    labels, runs, num_classes = _checked_predictions(labels, predictions, num_classes)
    _check_resamples(resamples)
    keys, correct = _run_class_keys(runs, num_classes), runs == labels
    tested = np.bincount(labels, minlength=num_classes)  # a stratified resample keeps every class's count
    top1, macro_f1 = np.empty(resamples), np.empty(resamples)
    for i, indices in enumerate(stratified_resamples(labels, resamples, seed)):
        top1[i], macro_f1[i] = _mean_top1_and_macro_f1(keys[:, indices], correct[:, indices], tested)
    return top1, macro_f1


def bootstrap_interval(labels: np.ndarray, predictions: np.ndarray, resamples: int = 1000, seed: int = 0,
                       confidence: float = 0.95, num_classes: int | None = None) -> dict[str, float]:
    """Top-1 and macro-F1 on the test set with percentile bootstrap intervals, rounded for readable JSON.

    The point values are those of the whole test set (mean over runs for (R, N) ``predictions``); the point
    macro-F1 equals ``classification_metrics``'s: every class 0..C-1 counts, one never predicted with F1 0,
    where C is ``num_classes`` or else the largest class in labels or predictions plus one. The interval is
    ``np.percentile`` (linear) of the resample statistics at (1 - confidence) / 2 and 1 - (1 - confidence) / 2.
    """
    _check_confidence(confidence)
    labels, runs, num_classes = _checked_predictions(labels, predictions, num_classes)
    top1, macro_f1 = _mean_top1_and_macro_f1(_run_class_keys(runs, num_classes), runs == labels,
                                             np.bincount(labels, minlength=num_classes))
    resampled = bootstrap_scores(labels, runs, resamples, seed, num_classes)
    result = {}
    for name, point, values in (("top1", top1, resampled[0]), ("macro_f1", macro_f1, resampled[1])):
        low, high = percentile_interval(values, confidence)
        result |= {name: point, f"{name}_low": low, f"{name}_high": high}
    return {name: round(float(value), 6) for name, value in result.items()}


def percentile_interval(resampled: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile bootstrap interval of a statistic from its values on the resamples, unrounded:
    ``np.percentile`` (linear) at (1 - confidence) / 2 and 1 - (1 - confidence) / 2."""
    _check_confidence(confidence)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(low), float(high)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """McNemar's exact two-sided test of classifiers A and B on the same test images, from per-image
    correctness: only the images one gets right and the other wrong say which is better.

    ``a_only`` (A right, B wrong), ``b_only`` and ``p_value`` = min(1, 2 P(X <= min(a_only, b_only))),
    X ~ Binomial(a_only + b_only, 1/2); 1 when no image tells them apart. The tail is summed in log space, so
    50,000 discordant images neither overflow nor underflow to a wrong 0.
    """
    correct_a, correct_b = _correctness(correct_a, "correct_a"), _correctness(correct_b, "correct_b")
    if correct_a.shape != correct_b.shape:
        raise UserError(f"correct_a has {len(correct_a)} images and correct_b {len(correct_b)}: pass the "
                        "correctness of both classifiers on the same test images, in the same order")
    a_only, b_only = int(np.sum(correct_a & ~correct_b)), int(np.sum(~correct_a & correct_b))
    return {"a_only": a_only, "b_only": b_only, "p_value": _two_sided_sign_test(a_only, b_only)}


def verdict(result: dict[str, float], num_images: int, alpha: float = 0.05) -> str:
    """A ``mcnemar`` result in words, for "A compared with B": "better, p = 0.002", "worse, p = 0.031" or
    "not distinguishable at 980 test images (p = 0.41)". p has two significant digits; below 0.001 it reads
    "p < 0.001"."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise UserError(f"alpha = {shown(alpha)} must be a significance level between 0 and 1 (e.g. 0.05)")
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise UserError(f"num_images = {shown(num_images)} must be the whole number of test images compared (>= 1)")
    p = result["p_value"]
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.2g}"
    if p < alpha and result["a_only"] != result["b_only"]:
        return f"{'better' if result['a_only'] > result['b_only'] else 'worse'}, {p_text}"
    return f"not distinguishable at {num_images} test images ({p_text})"


def _run_class_keys(runs: np.ndarray, num_classes: int) -> np.ndarray:
    """(R, N) predictions as one bincount key per (run, predicted class): run * C + class."""
    return runs + np.arange(len(runs))[:, None] * num_classes


def _mean_top1_and_macro_f1(keys: np.ndarray, correct: np.ndarray, tested: np.ndarray) -> tuple[float, float]:
    """Top-1 and macro-F1 averaged over R runs, from (R, N) ``_run_class_keys`` of the predictions, whether
    each is right, and the (C,) test images per class: two bincounts instead of loops over runs or images."""
    runs, num_classes = len(keys), len(tested)
    hits = np.bincount(keys[correct], minlength=runs * num_classes).reshape(runs, num_classes)
    predicted = np.bincount(keys.ravel(), minlength=runs * num_classes).reshape(runs, num_classes)
    both = tested + predicted
    f1 = np.divide(2 * hits, both, out=np.zeros(both.shape), where=both > 0)
    return float(correct.mean()), float(f1.mean())


def _two_sided_sign_test(a_only: int, b_only: int) -> float:
    """min(1, 2 P(X <= min(a_only, b_only))) for X ~ Binomial(a_only + b_only, 1/2), via log-gamma."""
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    i = np.arange(k + 1)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(j + 1) + math.lgamma(n - j + 1) for j in i])
    log_terms = log_choose - n * math.log(2)
    top = log_terms.max()
    log_tail = top + math.log(float(np.exp(log_terms - top).sum()))
    return min(1.0, 2 * math.exp(log_tail))


def _class_labels(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as non-negative int64 class indices, or a UserError naming what is wrong."""
    array = np.asarray(values)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise UserError(f"{name} = {shown(array)} must be a non-empty array of class indices (whole numbers >= 0)")
    return array.astype(np.int64, copy=False)


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise UserError(f"confidence = {shown(confidence)} must be a fraction between 0 and 1 (e.g. 0.95)")


def _check_resamples(resamples: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise UserError(f"resamples = {shown(resamples)} must be a whole number of bootstrap resamples >= 1 "
                        "(e.g. 1000)")


def _checked_predictions(labels: np.ndarray, predictions: np.ndarray,
                         num_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(N,) labels, (R, N) predictions and the class count C, checked against each other."""
    labels = _class_labels(labels, "labels")
    runs = _class_labels(predictions, "predictions")
    if labels.ndim != 1 or runs.ndim not in (1, 2) or runs.shape[-1] != len(labels):
        raise UserError(f"predictions of shape {runs.shape} do not fit labels of shape {labels.shape}: pass (N,) "
                        "predictions, or (R, N) for R runs, for the N test labels")
    runs = runs.reshape(-1, len(labels))
    needed = int(max(labels.max(), runs.max())) + 1
    if num_classes is None:
        return labels, runs, needed
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < needed:
        raise UserError(f"num_classes = {shown(num_classes)} must be a whole number covering every class in labels "
                        f"and predictions (at least {needed})")
    return labels, runs, int(num_classes)


def _correctness(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype != bool:
        raise UserError(f"{name} = {shown(array)} must be a 1-D boolean array (True where the classifier is right), "
                        "e.g. predictions == labels")
    return array


@dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """How every interval of a run is drawn (the same resamples, seed and coverage for all classifiers).
    Keyword-only: three numbers of which two are whole, easy to pass in the wrong order."""

    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def interval(self, labels: np.ndarray, predictions: np.ndarray, num_classes: int | None = None) -> dict[str, float]:
        return bootstrap_interval(labels, predictions, self.resamples, self.seed, self.confidence, num_classes)


def compared(correct_a: np.ndarray, correct_b: np.ndarray, alpha: float = 0.05) -> dict[str, float | str]:
    """``mcnemar`` of A against B with its ``verdict``, as stored in the metrics files."""
    result = mcnemar(correct_a, correct_b)
    return {**result, "p_value": round(result["p_value"], 6), "verdict": verdict(result, len(correct_a), alpha)}
