"""Distribution shift: source-fitted classifiers scored on a test-only shift set, and the paired bootstrap of what
the robustness papers report (source and shift top-1, the drop, effective robustness, WiSE-FT's alpha curve).

A shift set may cover only some of the source's classes (ImageNet-R, -A: 200 of 1,000) or merge several into one
(ObjectNet): as in the CLIP paper, each classifier's logits are restricted to the source classes the shift matches
before the argmax, and a prediction of any source class matched to an image's shift class is right. Every
classifier is then scored on ONE set of resamples, so differences between classifiers are paired. numpy only (no
scipy): tests/test_shift.py checks the fit, the restriction and the intervals against independent computations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from clip_study.errors import UserError, shown
from clip_study.evaluation.heads import LinearHead
from clip_study.evaluation.intervals import Bootstrap, stratified_resamples

AVERAGE = "average"
"""The name of the mean over a dataset's shift sets (results.csv's shift column), so never a shift set's."""
RESAMPLE_CHUNK = 64  # resamples turned into draw counts at once: (64, N) float64, 26 MB for N = 50,000


def acceptance(matches: Sequence[Sequence[int]], num_source_classes: int) -> np.ndarray:
    """(S, C) bool: [s, c] says that predicting source class c is right for an image of shift class s. ``matches``
    lists each shift class's source classes, in the shift's label order; several (a many-to-one map) all count."""
    if isinstance(num_source_classes, bool) or not isinstance(num_source_classes, (int, np.integer)) \
            or num_source_classes < 1:
        raise UserError(f"num_source_classes = {shown(num_source_classes)} must be the whole number of source "
                        "classes (>= 1)")
    if isinstance(matches, (str, bytes)) or not isinstance(matches, Sequence) or not matches:
        raise UserError(f"matches = {shown(matches)} must list, per shift class, its source class indices")
    accepts = np.zeros((len(matches), int(num_source_classes)), dtype=bool)
    for shift_class, sources in enumerate(matches):
        valid = isinstance(sources, Sequence) and not isinstance(sources, (str, bytes)) and len(sources) > 0 and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < num_source_classes
            for c in sources)
        if not valid:
            raise UserError(f"matches[{shift_class}] = {shown(sources)} must be a non-empty list of source class "
                            f"indices from 0 to {num_source_classes - 1}")
        accepts[shift_class, list(sources)] = True
    return accepts


def restricted_predictions(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(N,) int64 source class indices: the argmax of each row of (N, C) ``logits`` over the columns where the (C,)
    bool ``allowed`` is True only (ties: the lowest index, as ``argmax``), so a class the shift lacks never wins."""
    logits, columns = np.asarray(logits), _allowed_columns(allowed, np.shape(logits)[-1] if np.ndim(logits) else 0)
    if logits.ndim != 2:
        raise UserError(f"logits of shape {logits.shape} must be (N images, C source classes)")
    return columns[logits[:, columns].argmax(axis=1)].astype(np.int64)


def head_predictions(head: LinearHead, features: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """``restricted_predictions`` of ``head``'s logits on ``features``, computing the allowed columns only (a
    200-class shift of ImageNet costs a fifth of the products)."""
    columns = _allowed_columns(allowed, len(head.bias))
    sub = LinearHead(head.weights[columns], head.bias[columns], head.normalize)
    return columns[sub.predict(features)]


def shift_correct(predictions: np.ndarray, shift_labels: np.ndarray, accepts: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each image's predicted source class is accepted for its shift class (``acceptance``)."""
    predictions, shift_labels, accepts = np.asarray(predictions), np.asarray(shift_labels), np.asarray(accepts)
    if accepts.ndim != 2 or accepts.dtype != bool:
        raise UserError(f"accepts of shape {accepts.shape} must be the (S, C) bool table of ``acceptance``")
    for name, values, bound in (("predictions", predictions, accepts.shape[1]),
                                ("shift_labels", shift_labels, accepts.shape[0])):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or values.size == 0 \
                or values.min() < 0 or values.max() >= bound:
            raise UserError(f"{name} = {shown(values)} must be a non-empty 1-D array of class indices below {bound}")
    if predictions.shape != shift_labels.shape:
        raise UserError(f"{len(predictions)} predictions for {len(shift_labels)} shift labels: pass one per image")
    return accepts[shift_labels, predictions]


def _allowed_columns(allowed: np.ndarray, num_classes: int) -> np.ndarray:
    allowed = np.asarray(allowed)
    if allowed.dtype != bool or allowed.shape != (num_classes,) or not allowed.any():
        raise UserError(f"allowed = {shown(allowed)} must be a ({num_classes},) bool mask of the source classes the "
                        "shift matches, at least one True (e.g. acceptance(...).any(axis=0))")
    return np.flatnonzero(allowed)


@dataclass(frozen=True)
class TestSet:
    """H classifiers on one test set: ``correct`` (H, N) in [0, 1], 1/0 per image or the fraction of a classifier's
    runs that got it right (few-shot seeds: the mean over runs, so a resample scores the mean classifier), and the
    (N,) class labels the resamples are stratified by."""

    __test__ = False  # not a pytest class

    correct: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        correct, labels = np.asarray(self.correct, dtype=np.float64), np.asarray(self.labels)
        if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise UserError(f"labels = {shown(labels)} must be a non-empty 1-D array of class indices (>= 0)")
        if correct.ndim != 2 or correct.shape[1] != len(labels) or not len(correct):
            raise UserError(f"correct of shape {correct.shape} must be (H classifiers, {len(labels)} images)")
        if not (np.isfinite(correct).all() and correct.min() >= 0 and correct.max() <= 1):
            raise UserError("correct must hold fractions from 0 to 1 (1/0 per image, or the share of runs right)")
        object.__setattr__(self, "correct", correct)
        object.__setattr__(self, "labels", labels.astype(np.int64))

    def accuracy(self) -> np.ndarray:
        """(H,) top-1 of each classifier on all the images."""
        return self.correct.mean(axis=1)


def resampled_accuracies(test: TestSet, resamples: int, seed: int) -> np.ndarray:
    """(R, H) top-1 of each classifier on each of ``stratified_resamples(test.labels, resamples, seed)``, in order:
    a resample's draw counts per image times the correctness, RESAMPLE_CHUNK resamples per matrix product, so the
    cost is O(R x N x H) multiply-adds in BLAS and no (H, N) gather per resample."""
    n, heads = len(test.labels), len(test.correct)
    draws, out = stratified_resamples(test.labels, resamples, seed), np.empty((resamples, heads))
    ones = np.ones(RESAMPLE_CHUNK * n)  # weights: bincount then counts in float64 directly (a third of the time)
    for start in range(0, resamples, RESAMPLE_CHUNK):
        block = np.stack(list(islice(draws, RESAMPLE_CHUNK)))
        offsets = np.arange(len(block))[:, None] * n
        counts = np.bincount((block + offsets).ravel(), weights=ones[:block.size], minlength=block.size)
        out[start:start + len(block)] = counts.reshape(block.shape) @ test.correct.T / n
    return out


@dataclass(frozen=True)
class Estimate:
    """A statistic on all the test images (``value``) with its percentile bootstrap interval: arrays, one entry
    per classifier, or 0-d for one number."""

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def at(self, index: int | tuple = ()) -> tuple[float, float, float]:
        """(value, low, high) of one entry, as floats."""
        return tuple(float(np.asarray(part)[index]) for part in (self.value, self.low, self.high))


@dataclass(frozen=True)
class LogitFit:
    """The baseline of effective robustness: logit(shift top-1) = slope * logit(source top-1) + intercept, least
    squares over the fit set, accuracies clipped into [clip, 1 - clip] first (half an image: 0.5 / N for the
    source's N images, 0.5 / the shift images in all for the shift average), so 0 and 1 stay finite."""

    slope: Estimate
    intercept: Estimate
    points: np.ndarray  # the fit set's classifier indices
    source_clip: float
    shift_clip: float

    def predicted(self, source_top1: np.ndarray) -> np.ndarray:
        """The shift top-1 the line predicts from source top-1 (on all the images)."""
        x = _logit(np.clip(source_top1, self.source_clip, 1 - self.source_clip))
        return _expit(float(self.slope.value) * x + float(self.intercept.value))


@dataclass(frozen=True)
class CurveCheck:
    """Whether an interior point of an alpha curve (0 first, 1 last) beats both ends on the shift: best interior
    shift top-1 minus the better end's, recomputed (best interior included) on every resample."""

    best: int  # the position in the curve of the interior point with the best shift top-1 on all the images
    difference: Estimate


@dataclass(frozen=True)
class ShiftEvaluation:
    """Per classifier (arrays of H): source top-1, shift top-1 (the mean over the shift sets), drop = source -
    shift, effective robustness over the ``fit`` line, and the drop minus the reference's (with a two-sided
    bootstrap p-value); the fit; one ``CurveCheck`` per alpha curve."""

    source: Estimate
    shift: Estimate
    drop: Estimate
    effective_robustness: Estimate
    drop_vs_reference: Estimate
    p_value: np.ndarray
    fit: LogitFit
    curves: list[CurveCheck]


def bootstrap_p_values(differences: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-values of "no difference", one per column of ``differences`` (its R paired resamples
    down the first axis): min(1, 2 (m + 1) / (R + 1)), m the resamples on the rarer side of 0 (a 0 counts on both)."""
    differences = np.asarray(differences)
    rarer = np.minimum((differences <= 0).sum(0), (differences >= 0).sum(0))
    return np.minimum(1.0, 2 * (rarer + 1) / (len(differences) + 1))


def evaluate_shift(source: TestSet, shifts: Sequence[TestSet], bootstrap: Bootstrap, *, reference: int,
                   fit_set: Sequence[int], curves: Sequence[Sequence[int]] = ()) -> ShiftEvaluation:
    """Score H classifiers on their source test set and one or more shift sets (their shift top-1 is the plain mean
    over the sets), every interval from ONE set of resamples shared by all classifiers, so comparisons are paired.

    The draws, for a reimplementation: the source's are ``stratified_resamples(source.labels, R, seed)``, shift
    set j's ``stratified_resamples(shifts[j].labels, R, seed + 1 + j)``; resample r of every statistic pairs the r-th
    draw of each set. Intervals: ``np.percentile`` (linear) at (1 - confidence) / 2 and its complement, over the
    resamples (the fit's and effective robustness's over those where the fit set's source top-1 are not all equal).
    ``drop_vs_reference``: drop minus the ``reference`` classifier's; its p-value is min(1, 2 (m + 1) / (R + 1)), m
    the resamples on the rarer side of 0. Effective robustness refits the line on every resample, so its interval
    carries the fit's uncertainty. ``curves``: classifier indices of alpha curves, alpha 0 first and 1 last.
    """
    shifts = list(shifts)
    heads = len(source.correct)
    if not shifts or any(len(s.correct) != heads for s in shifts):
        raise UserError(f"shifts: give one or more TestSets of the same {heads} classifiers as the source "
                        f"(got {[len(s.correct) for s in shifts]})")
    reference = _index(reference, heads, "reference")
    fit = np.array([_index(i, heads, "fit_set") for i in fit_set], dtype=np.int64)
    if len(set(fit.tolist())) < 2:
        raise UserError(f"fit_set = {shown(list(fit_set))} must name at least two classifiers to fit a line through")
    curves = [np.array([_index(i, heads, "curves") for i in curve], dtype=np.int64) for curve in curves]
    if any(len(curve) < 3 for curve in curves):
        raise UserError("curves: each alpha curve needs its two ends and at least one interior point (3 indices)")
    confidence = bootstrap.confidence
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise UserError(f"confidence = {shown(confidence)} must be a fraction between 0 and 1 (e.g. 0.95)")
    clips = 0.5 / len(source.labels), 0.5 / sum(len(s.labels) for s in shifts)

    def statistics(src: np.ndarray, shf: np.ndarray) -> dict[str, np.ndarray]:
        """Every statistic from (..., H) source and shift top-1: the same code on all images and on resamples."""
        x, y = _logit(np.clip(src, clips[0], 1 - clips[0])), _logit(np.clip(shf, clips[1], 1 - clips[1]))
        fx, fy = x[..., fit], y[..., fit]
        dx, dy = fx - fx.mean(-1, keepdims=True), fy - fy.mean(-1, keepdims=True)
        spread = (dx * dx).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(spread > 0, (dx * dy).sum(-1) / spread, np.nan)
        intercept = fy.mean(-1) - slope * fx.mean(-1)
        drop = src - shf
        found = {"source": src, "shift": shf, "drop": drop,
                 "drop_vs_reference": drop - drop[..., reference:reference + 1],
                 "effective_robustness": shf - _expit(slope[..., None] * x + intercept[..., None]),
                 "slope": slope, "intercept": intercept}
        for j, curve in enumerate(curves):
            found[f"curve{j}"] = shf[..., curve[1:-1]].max(-1) - np.maximum(shf[..., curve[0]], shf[..., curve[-1]])
        return found

    point = statistics(source.accuracy(), np.mean([s.accuracy() for s in shifts], axis=0))
    if np.isnan(point["slope"]):
        raise UserError("fit_set: its classifiers all have the same source top-1; a line needs two different ones")
    resampled = statistics(resampled_accuracies(source, bootstrap.resamples, bootstrap.seed),
                           np.mean([resampled_accuracies(s, bootstrap.resamples, bootstrap.seed + 1 + j)
                                    for j, s in enumerate(shifts)], axis=0))

    def estimate(name: str) -> Estimate:
        low, high = _percentiles(resampled[name], bootstrap.confidence)
        return Estimate(point[name], low, high)

    return ShiftEvaluation(
        source=estimate("source"), shift=estimate("shift"), drop=estimate("drop"),
        effective_robustness=estimate("effective_robustness"), drop_vs_reference=estimate("drop_vs_reference"),
        p_value=bootstrap_p_values(resampled["drop_vs_reference"]),
        fit=LogitFit(slope=estimate("slope"), intercept=estimate("intercept"), points=fit, source_clip=clips[0],
                     shift_clip=clips[1]),
        curves=[CurveCheck(best=int(np.argmax(point["shift"][curve[1:-1]])) + 1, difference=estimate(f"curve{j}"))
                for j, curve in enumerate(curves)])


def _percentiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval along the resamples (axis 0), ignoring resamples where the statistic is undefined."""
    tail = 100 * (1 - confidence) / 2
    if np.isnan(values).any():
        low, high = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    else:
        low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _expit(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # 1 / (1 + exp(-z)) without overflow


def _index(value: int, count: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
        raise UserError(f"{name}: {shown(value)} is no classifier index from 0 to {count - 1}")
    return int(value)
