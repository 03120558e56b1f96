"""Calibration metrics equal hand-computed values, sklearn and direct formulas; the fitted temperature equals
scipy's bounded minimiser."""


import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.metrics import log_loss

from clip_study.errors import UserError
from clip_study.evaluation.calibration import (brier_score, calibration_metrics, expected_calibration_error,
                                               fit_temperature, negative_log_likelihood, reliability_bins, softmax)

# 6 images, 3 classes, 3 bins: (0, 1/3] (with 0), (1/3, 2/3], (2/3, 1]
HAND_PROBS = np.array([[1 / 6, 2 / 3, 1 / 6],   # conf 2/3 (on an edge: bin 1), predicts 1, right
                       [0.3, 0.3, 0.4],         # conf 0.4, bin 1, predicts 2, wrong
                       [0.9, 0.05, 0.05],       # conf 0.9, bin 2, right
                       [0.1, 0.75, 0.15],       # conf 0.75, bin 2, predicts 1, wrong
                       [0.0, 0.0, 1.0],         # conf 1 (the top edge: bin 2), right
                       [1 / 3, 1 / 3, 1 / 3]])  # conf 1/3 (on an edge: bin 0), the tie predicts 0, right
HAND_LABELS = np.array([1, 0, 0, 2, 2, 0])
# bin 0: 1 image, confidence 1/3, accuracy 1: gap 2/3, weight 1/6 -> 1/9
# bin 1: 2 images, confidence (2/3 + 0.4) / 2 = 8/15, accuracy 1/2: gap 1/30, weight 2/6 -> 1/90
# bin 2: 3 images, confidence (0.9 + 0.75 + 1) / 3 = 53/60, accuracy 2/3: gap 13/60, weight 3/6 -> 13/120
# ECE = 1/9 + 1/90 + 13/120 = 83/360. Binning [i/B, (i+1)/B) instead would give 0.0972 (bins 1 and 2 differ).
HAND_ECE = 83 / 360


def calibrated_sample(images: int = 20_000, classes: int = 10, seed: int = 0):
    """Logits whose softmax is the true class distribution: each label is drawn from its probabilities."""
    rng = np.random.default_rng(seed)
    logits = 2 * rng.normal(size=(images, classes))
    probs = softmax(logits)
    labels = (probs.cumsum(axis=1) > rng.random((images, 1))).argmax(axis=1)
    return logits, labels


def reference_ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """The ECE as a loop over bins with (lower, upper] masks."""
    confidence, hit = probs.max(axis=1), probs.argmax(axis=1) == labels
    total = 0.0
    for i in range(bins):
        inside = (confidence > i / bins) & (confidence <= (i + 1) / bins) | ((i == 0) & (confidence == 0))
        if inside.any():
            total += inside.mean() * abs(hit[inside].mean() - confidence[inside].mean())
    return total


def test_ece_equals_the_hand_computation():
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, bins=3) == pytest.approx(HAND_ECE, abs=1e-12)
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, bins=3) == pytest.approx(
        reference_ece(HAND_PROBS, HAND_LABELS, 3), abs=1e-12)


def test_reliability_bins_of_the_hand_example():
    assert reliability_bins(HAND_PROBS, HAND_LABELS, bins=3) == [
        {"lower": 0.0, "upper": pytest.approx(1 / 3), "count": 1, "confidence": pytest.approx(1 / 3),
         "accuracy": 1.0},
        {"lower": pytest.approx(1 / 3), "upper": pytest.approx(2 / 3), "count": 2,
         "confidence": pytest.approx(8 / 15), "accuracy": 0.5},
        {"lower": pytest.approx(2 / 3), "upper": 1.0, "count": 3, "confidence": pytest.approx(53 / 60),
         "accuracy": pytest.approx(2 / 3)}]


@pytest.mark.parametrize("bins", [1, 10, 15])
def test_ece_equals_the_weighted_gap_of_the_reliability_bins_and_a_loop(bins):
    logits, labels = calibrated_sample(images=3000, seed=1)
    probs = softmax(1.7 * logits)
    rows = reliability_bins(probs, labels, bins)
    assert sum(row["count"] for row in rows) == 3000 and all(row["count"] > 0 for row in rows)
    assert all(row["lower"] < row["confidence"] <= row["upper"] for row in rows)
    weighted_gap = sum(row["count"] / 3000 * abs(row["accuracy"] - row["confidence"]) for row in rows)
    ece = expected_calibration_error(probs, labels, bins)
    assert ece == pytest.approx(weighted_gap, abs=1e-12)
    assert ece == pytest.approx(reference_ece(probs, labels, bins), abs=1e-12)


def test_a_calibrated_sample_has_a_small_ece_and_an_overconfident_one_a_large_ece():
    logits, labels = calibrated_sample()
    assert expected_calibration_error(softmax(logits), labels) < 0.02
    assert expected_calibration_error(softmax(5 * logits), labels) > 0.2
    underconfident = calibration_metrics(logits, labels, temperature=5.0)["ece"]
    assert calibration_metrics(logits, labels)["ece"] < 0.02 < underconfident


def test_nll_and_brier_equal_sklearn_and_the_direct_formula():
    logits, labels = calibrated_sample(images=500, classes=6, seed=2)
    probs = softmax(logits, temperature=1.3)
    assert negative_log_likelihood(probs, labels) == pytest.approx(log_loss(labels, probs, labels=range(6)), rel=1e-9)
    onehot = np.eye(6)[labels]
    assert brier_score(probs, labels) == pytest.approx(((probs - onehot) ** 2).sum(axis=1).mean(), abs=1e-12)
    metrics = calibration_metrics(logits, labels, bins=10, temperature=1.3)
    assert metrics == {"ece": round(expected_calibration_error(probs, labels, 10), 6),
                       "nll": round(negative_log_likelihood(probs, labels), 6),
                       "brier": round(brier_score(probs, labels), 6)}


def test_nll_clips_a_zero_probability_at_1e_12():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert negative_log_likelihood(probs, np.array([1, 0])) == pytest.approx((-np.log(1e-12) + np.log(2)) / 2)
    assert brier_score(probs, np.array([1, 0])) == pytest.approx((2 + 0.5) / 2)


def test_softmax_is_stable_and_the_temperature_divides_the_logits():
    logits = np.array([[1000.0, 999.0, 0.0], [-5.0, 5.0, 0.0]], dtype=np.float32)
    probs = softmax(logits, temperature=2.0)
    assert probs.dtype == np.float64 and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs, np.exp(log_softmax(logits.astype(np.float64) / 2, axis=1)), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)


def scipy_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    def nll(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    found = minimize_scalar(nll, bounds=(np.log(0.01), np.log(100)), method="bounded", options={"xatol": 1e-9})
    return float(np.exp(found.x))


@pytest.mark.parametrize("scale", [5.0, 1.0, 0.2], ids=["over-confident", "calibrated", "under-confident"])
def test_fit_temperature_equals_scipy_and_undoes_a_scaling(scale):
    logits, labels = calibrated_sample(images=4000, seed=3)
    temperature = fit_temperature(scale * logits, labels)
    assert temperature == pytest.approx(scipy_temperature(scale * logits, labels), rel=1e-4)
    assert temperature == pytest.approx(scale, rel=0.1)
    if scale != 1:
        assert (temperature > 1) == (scale > 1)
    fitted = calibration_metrics(scale * logits, labels, temperature=temperature)
    assert fitted["nll"] <= calibration_metrics(scale * logits, labels)["nll"]


def test_fit_temperature_stops_at_the_lower_bound_for_separable_logits():
    labels = np.array([0, 1, 2, 0])
    logits = 3.0 * np.eye(3)[labels]  # the true class always on top: the NLL keeps falling as T shrinks
    assert fit_temperature(logits, labels) == pytest.approx(0.01, rel=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: expected_calibration_error(HAND_PROBS[:, 0], HAND_LABELS), "probabilities of shape (6,) do not fit "
                                                                         "labels of shape (6,)"),
    (lambda: brier_score(HAND_PROBS, HAND_LABELS[:5]), "probabilities of shape (6, 3) do not fit labels of shape (5,)"),
    (lambda: negative_log_likelihood(HAND_PROBS, HAND_LABELS + 1), "must be class indices from 0 to 2"),
    (lambda: negative_log_likelihood(HAND_PROBS, HAND_LABELS.astype(float)), "must be class indices from 0 to 2"),
    (lambda: expected_calibration_error(HAND_PROBS * 3, HAND_LABELS), "must lie in [0, 1]: pass softmax(logits)"),
    (lambda: expected_calibration_error(HAND_PROBS / 2, HAND_LABELS), "probabilities of image 0 sum to 0.5, not 1"),
    (lambda: expected_calibration_error(HAND_PROBS, HAND_LABELS, bins=0), "bins = 0 must be a whole number"),
    (lambda: reliability_bins(HAND_PROBS, HAND_LABELS, bins=2.5), "bins = 2.5 must be a whole number"),
    (lambda: softmax(HAND_PROBS, temperature=0), "temperature = 0 must be a positive number"),
    (lambda: calibration_metrics(HAND_PROBS, HAND_LABELS, temperature=-1.0), "temperature = -1.0 must be"),
    (lambda: fit_temperature(np.full((2, 3), np.nan), np.array([0, 1])), "logits must be finite"),
    (lambda: fit_temperature(np.zeros((2, 3)), np.array([0, 1, 2])), "logits of shape (2, 3) do not fit labels"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_bad_inputs_name_the_value_and_the_fix(call, message):
    with pytest.raises(UserError) as caught:
        call()
    assert message in str(caught.value) and "\n" not in str(caught.value)

