"""How far a classifier's predicted probabilities can be trusted: expected calibration error, reliability
bins, negative log-likelihood and Brier score, and the temperature that calibrates logits on held-out data.

A classifier can rank classes well (high top-1) and still claim 99% where it is right 70% of the time;
these say by how much. Pure numpy and math, no scipy: stages that only score embeddings start fast
(tests/test_calibration.py checks against sklearn, scipy and hand-computed values).
"""

from __future__ import annotations

import math

import numpy as np

from clip_study.errors import UserError, shown

LOG_T_BOUNDS = (math.log(0.01), math.log(100.0))
"""The temperatures ``fit_temperature`` searches, as log T: far wider than any useful correction."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise probabilities of (N, C) ``logits / temperature`` in float64; the row max is subtracted
    first so that large logits (CLIP's are scaled by 100) never overflow."""
    _check_temperature(temperature)
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """The standard ECE: the images are binned by confidence (the top probability) into ``bins`` equal
    widths on [0, 1], bin i holding (i/B, (i+1)/B] and the first also 0; the sum over bins of
    (count / N) * |accuracy - mean confidence| of the top prediction."""
    counts, confidence_sums, hit_sums = _bin_sums(probs, labels, bins)
    return float(np.abs(hit_sums - confidence_sums).sum() / counts.sum())


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> list[dict[str, float]]:
    """What a reliability diagram draws, per non-empty bin of ``expected_calibration_error``: its bounds
    ``lower`` and ``upper``, ``count`` of images, mean ``confidence`` and ``accuracy``."""
    counts, confidence_sums, hit_sums = _bin_sums(probs, labels, bins)
    return [{"lower": float(i / bins), "upper": float((i + 1) / bins), "count": int(counts[i]),
             "confidence": float(confidence_sums[i] / counts[i]), "accuracy": float(hit_sums[i] / counts[i])}
            for i in np.flatnonzero(counts)]


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class); probabilities are clipped at 1e-12 so that one confident mistake costs
    ~27.6 nats instead of infinity."""
    probs, labels = _checked(probs, labels)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over images of the squared distance between the probabilities and the one-hot true class
    (0 is perfect, 2 the worst), expanded as sum p^2 - 2 p_true + 1 to build no one-hot matrix."""
    probs, labels = _checked(probs, labels)
    return float(((probs ** 2).sum(axis=1) - 2 * probs[np.arange(len(labels)), labels] + 1).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T) on (validation) ``logits``.

    The NLL is convex in 1/T, hence unimodal in log T: a golden-section search on log T in
    [log 0.01, log 100] to 1e-6 finds it deterministically (a bound is returned when the optimum lies
    beyond it, e.g. for separable data, whose NLL keeps falling as T shrinks).
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = _checked_logits(logits, labels)
    true_logits = logits[np.arange(len(logits)), labels]

    def nll(log_t: float) -> float:
        scaled = logits / math.exp(log_t)
        top = scaled.max(axis=1)
        log_sum = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float((log_sum - true_logits / math.exp(log_t)).mean())

    ratio = (math.sqrt(5) - 1) / 2
    low, high = LOG_T_BOUNDS
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    nll_left, nll_right = nll(left), nll(right)
    while high - low > 1e-6:
        if nll_left <= nll_right:
            high, right, nll_right = right, left, nll_left
            left = high - ratio * (high - low)
            nll_left = nll(left)
        else:
            low, left, nll_left = left, right, nll_right
            right = low + ratio * (high - low)
            nll_right = nll(right)
    return math.exp((low + high) / 2)


def calibration_metrics(logits: np.ndarray, labels: np.ndarray, bins: int = 15,
                        temperature: float = 1.0) -> dict[str, float]:
    """ECE, NLL and Brier score of softmax(logits / temperature), rounded for readable JSON."""
    _checked_logits(np.asarray(logits), labels)
    probs = softmax(logits, temperature)
    return {"ece": round(expected_calibration_error(probs, labels, bins), 6),
            "nll": round(negative_log_likelihood(probs, labels), 6),
            "brier": round(brier_score(probs, labels), 6)}


def _bin_sums(probs: np.ndarray, labels: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin: image count, sum of confidences and number right; the ECE and the reliability
    bins both read these, so they agree exactly."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise UserError(f"bins = {shown(bins)} must be a whole number of confidence bins >= 1 (e.g. 15)")
    probs, labels = _checked(probs, labels)
    confidence = probs.max(axis=1)
    hit = probs.argmax(axis=1) == labels
    edges = np.arange(bins + 1) / bins  # i / B exactly as a float, so (i/B, (i+1)/B] is what it says
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    return (np.bincount(index, minlength=bins), np.bincount(index, weights=confidence, minlength=bins),
            np.bincount(index, weights=hit, minlength=bins))


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise UserError(f"temperature = {shown(temperature)} must be a positive number (1 leaves the logits as they "
                        "are)")


def _checked(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) probabilities that sum to 1 per row and (N,) class indices below C, or a UserError."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = _checked_labels(labels, probs, "probabilities")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise UserError(f"probabilities from {probs.min()} to {probs.max()} must lie in [0, 1]: pass softmax(logits), "
                        "not logits")
    sums = probs.sum(axis=1)
    worst = int(np.abs(sums - 1).argmax())
    if abs(sums[worst] - 1) > 1e-4:
        raise UserError(f"probabilities of image {worst} sum to {sums[worst]:.6g}, not 1: pass one probability per "
                        "class (softmax(logits)) in each row")
    return probs, labels


def _checked_logits(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = _checked_labels(labels, logits, "logits")
    if not np.all(np.isfinite(logits)):
        raise UserError("logits must be finite numbers: a NaN or infinite score came in; check the features")
    return labels


def _checked_labels(labels: np.ndarray, scores: np.ndarray, what: str) -> np.ndarray:
    """(N,) int64 class indices that fit (N, C) ``scores``, or a UserError naming the shapes."""
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.shape != (len(scores),) or scores.shape[0] == 0:
        raise UserError(f"{what} of shape {scores.shape} do not fit labels of shape {labels.shape}: pass (N, C) "
                        f"{what}, one row per test image and one column per class, and N labels")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise UserError(f"labels = {shown(labels)} must be class indices from 0 to {scores.shape[1] - 1}, one per "
                        f"column of the {what}")
    return labels.astype(np.int64, copy=False)


def calibration_report(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray,
                       test_labels: np.ndarray, bins: int = 15) -> dict:
    """Calibration on the test images before and after temperature scaling, the temperature fitted on
    validation data (never on test), with the reliability bins of both for a diagram."""
    temperature = fit_temperature(val_logits, val_labels)
    rounded = lambda rows: [{k: round(float(v), 6) for k, v in row.items()} for row in rows]  # noqa: E731
    return {"temperature": round(temperature, 6), "bins": bins,
            "before": calibration_metrics(test_logits, test_labels, bins),
            "after": calibration_metrics(test_logits, test_labels, bins, temperature),
            "reliability_before": rounded(reliability_bins(softmax(test_logits), test_labels, bins)),
            "reliability_after": rounded(reliability_bins(softmax(test_logits, temperature), test_labels, bins))}
