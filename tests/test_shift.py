"""clip_study/evaluation/shift.py on constructed cases: the restriction of logits to a class subset (features at
known angles), WiSE-FT's alpha curve (flips at closed-form alphas), the logit-axis fit (scipy's linregress), and
every interval against a loop over ``stratified_resamples`` written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit
from scipy.stats import linregress

from clip_study.errors import UserError
from clip_study.evaluation.heads import LinearHead, mix
from clip_study.evaluation.intervals import Bootstrap, bootstrap_interval, percentile_interval, stratified_resamples
from clip_study.evaluation.shift import (TestSet, acceptance, evaluate_shift, head_predictions, resampled_accuracies,
                                         restricted_predictions, shift_correct)


def on_circle(degrees: list[float], norms: list[float] | None = None) -> np.ndarray:
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    points = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    return points * (np.asarray(norms)[:, None] if norms is not None else 1)


# six source classes at 0, 60, ..., 300 degrees; the shift keeps 0, 120 and 240: class 0 -> source 0, class 1 ->
# sources 2 and 4 (many-to-one)
SOURCE_DIRECTIONS = on_circle([0, 60, 120, 180, 240, 300])
MATCHES = [[0], [2, 4]]
IMAGE_ANGLES = [10, 50, 70, 100, 170, 200, 250, 290, 340]
FULL = [0, 1, 1, 2, 3, 3, 4, 5, 0]  # the nearest of the six directions, by hand
RESTRICTED = [0, 0, 2, 2, 2, 4, 4, 4, 0]  # the nearest of 0, 120 and 240 degrees
SHIFT_LABELS = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0])
RIGHT = [True, False, True, False, True, True, True, False, True]  # RESTRICTED accepted for SHIFT_LABELS


def test_acceptance_is_the_class_map_as_a_table_many_to_one_included():
    accepts = acceptance(MATCHES, 6)
    assert accepts.tolist() == [[True, False, False, False, False, False],
                                [False, False, True, False, True, False]]
    assert accepts.any(axis=0).tolist() == [True, False, True, False, True, False]
    for bad in ([[0], [6]], [[0], []], [], [[0], ["2"]], [[True]]):
        with pytest.raises(UserError, match="matches"):
            acceptance(bad, 6)
    with pytest.raises(UserError, match="num_source_classes"):
        acceptance(MATCHES, 0)


def test_restricted_argmax_picks_the_nearest_kept_class_where_the_full_argmax_picks_a_dropped_one():
    head = LinearHead(10 * SOURCE_DIRECTIONS, np.zeros(6), normalize=True)
    features = on_circle(IMAGE_ANGLES, norms=[0.5, 3, 1, 2, 7, 1, 0.1, 4, 1])  # norms do not matter to cosine
    allowed = acceptance(MATCHES, 6).any(axis=0)
    assert head.predict(features).tolist() == FULL
    assert restricted_predictions(head.logits(features), allowed).tolist() == RESTRICTED
    assert head_predictions(head, features, allowed).tolist() == RESTRICTED
    # independently: -inf on the dropped columns, then the plain argmax
    masked = np.where(allowed, head.logits(features), -np.inf).argmax(axis=1)
    assert masked.tolist() == RESTRICTED and sum(f != r for f, r in zip(FULL, RESTRICTED)) == 5
    correct = shift_correct(np.array(RESTRICTED), SHIFT_LABELS, acceptance(MATCHES, 6))
    assert correct.tolist() == RIGHT and correct.mean() == 6 / 9
    # many-to-one: source 2 and source 4 are both right for shift class 1, and only they
    assert shift_correct(np.array([2, 4, 3, 0]), np.array([1, 1, 1, 1]), acceptance(MATCHES, 6)).tolist() == \
        [True, True, False, False]
    with pytest.raises(UserError, match="allowed"):
        restricted_predictions(head.logits(features), np.zeros(6, dtype=bool))
    with pytest.raises(UserError, match="allowed"):
        restricted_predictions(head.logits(features), np.ones(5, dtype=bool))
    with pytest.raises(UserError, match="shift_labels"):
        shift_correct(np.array(RESTRICTED), SHIFT_LABELS + 1, acceptance(MATCHES, 6))


def flip_alpha(degrees: float) -> float:
    """Where the mix of ZERO_SHOT and FITTED changes its mind about an image at ``degrees``: the margin of class 0
    is 2 ((1 - a) cos + a sin), zero at a = cos / (cos - sin) = 1 / (1 - tan)."""
    return 1 / (1 - math.tan(math.radians(degrees)))


ZERO_SHOT = LinearHead(np.array([[5.0, 0.0], [-5.0, 0.0]]), np.zeros(2), normalize=True)  # margin 10 cos
FITTED = LinearHead(np.array([[0.0, 5.0], [0.0, -5.0]]), np.zeros(2), normalize=True)  # margin 10 sin
ALPHAS = [round(0.1 * i, 1) for i in range(11)]


def test_the_mixes_flip_each_prediction_at_its_closed_form_alpha():
    angles = [100, 125, 140, 155, 170]  # zero-shot says 1, the fitted head 0: each flips once, off the grid
    assert [round(flip_alpha(a), 4) for a in angles] == [0.1499, 0.4118, 0.5437, 0.682, 0.8501]
    features = on_circle(angles)
    for alpha in ALPHAS:
        predicted = mix(ZERO_SHOT, FITTED, alpha).predict(features)
        assert predicted.tolist() == [0 if alpha > flip_alpha(a) else 1 for a in angles], alpha


def curve_case(seed: int = 0) -> tuple[TestSet, TestSet, np.ndarray, np.ndarray]:
    """Rows 0-10: the mixes at ALPHAS; row 11: another classifier. Shift images at angles in (90, 180): those
    labelled 1 are right up to their flip alpha, those labelled 0 from it on, so the middle alphas win."""
    rng = np.random.default_rng(seed)
    angles = np.concatenate([rng.uniform(140, 170, 40), rng.uniform(100, 130, 40)])
    labels = np.repeat([1, 0], 40)
    features = on_circle(angles)
    heads = [mix(ZERO_SHOT, FITTED, alpha) for alpha in ALPHAS] + [ZERO_SHOT]
    shift = TestSet(np.stack([h.predict(features) == labels for h in heads]), labels)
    source_labels = np.repeat(np.arange(4), 25)
    source = TestSet(rng.random((len(heads), 100)) < np.linspace(0.5, 0.9, len(heads))[:, None], source_labels)
    return source, shift, angles, labels


def test_the_alpha_curve_check_matches_the_hand_count_and_a_loop_over_the_resamples():
    source, shift, angles, labels = curve_case()
    curve, angles_right = list(range(11)), []  # the accuracy of each alpha from the closed-form flips
    for alpha in ALPHAS:
        right = [(alpha > flip_alpha(a)) == (label == 0) for a, label in zip(angles, labels)]
        angles_right.append(np.mean(right))
    assert np.allclose(shift.accuracy()[:11], angles_right)
    bootstrap = Bootstrap(resamples=300, seed=5, confidence=0.9)
    result = evaluate_shift(source, [shift], bootstrap, reference=0, fit_set=[0, 11], curves=[curve])
    check = result.curves[0]
    accuracy = np.array(angles_right)
    assert check.best == 1 + int(np.argmax(accuracy[1:-1]))
    assert float(check.difference.value) == pytest.approx(accuracy[1:-1].max() - max(accuracy[0], accuracy[-1]))
    assert float(check.difference.value) > 0.3  # the middle alphas get both halves mostly right

    differences = []
    for indices in stratified_resamples(shift.labels, 300, 6):  # the shift's seed: seed + 1
        acc = shift.correct[:11, indices].mean(axis=1)
        differences.append(acc[1:-1].max() - max(acc[0], acc[-1]))
    low, high = percentile_interval(np.array(differences), 0.9)
    assert (float(check.difference.low), float(check.difference.high)) == pytest.approx((low, high), abs=1e-12)


def test_the_logit_fit_recovers_an_exact_line_and_the_effective_robustness_of_a_point_off_it():
    slope, intercept = 0.8, -0.5
    source_top1 = np.array([0.3, 0.45, 0.6, 0.75, 0.9])
    on_line = expit(slope * logit(source_top1) + intercept)
    off = (0.7, 0.75)  # a classifier well above the line
    labels = np.repeat(np.arange(5), 20)  # 100 images; fractional correctness gives exact accuracies
    src = np.concatenate([source_top1, [off[0]]])[:, None] * np.ones((1, 100))
    shf = np.concatenate([on_line, [off[1]]])[:, None] * np.ones((1, 100))
    result = evaluate_shift(TestSet(src, labels), [TestSet(shf, labels)], Bootstrap(resamples=50, seed=0),
                            reference=5, fit_set=range(5))
    fit = linregress(logit(source_top1), logit(on_line))
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept))
    assert float(result.fit.slope.value) == pytest.approx(slope) and float(result.fit.intercept.value) == \
        pytest.approx(intercept)
    hand = 0.75 - 1 / (1 + math.exp(-(0.8 * math.log(0.7 / 0.3) - 0.5)))  # 0.75 - expit(0.1778) = 0.75 - 0.5443
    assert hand == pytest.approx(0.20566, abs=1e-5)
    assert float(result.effective_robustness.value[5]) == pytest.approx(hand)
    assert np.allclose(result.effective_robustness.value[:5], 0, atol=1e-12)
    assert result.fit.predicted(np.array([0.7]))[0] == pytest.approx(0.75 - hand)
    assert float(result.drop.value[5]) == pytest.approx(-0.05)


def random_case(seed: int, heads: int = 8, source_n: int = 120, shift_ns: tuple[int, ...] = (90,)):
    """Random 0/1 correctness at spread accuracies, one classifier right on every source image (clipped)."""
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.35, 0.95, heads)[:, None]
    correct = rng.random((heads, source_n)) < rates
    correct[-1] = True  # a classifier right on every source image: its logit needs the clip
    source = TestSet(correct, np.arange(source_n) % 4)
    shifts = [TestSet(rng.random((heads, n)) < rates - 0.2, np.arange(n) % 3) for n in shift_ns]
    return source, shifts


def independent(source: TestSet, shifts: list[TestSet], bootstrap: Bootstrap, reference: int, fit: list[int]):
    """Every statistic on every resample, by a loop over stratified_resamples and scipy: the test's oracle."""
    def statistics(src, shf):
        h_src, h_shf = 0.5 / len(source.labels), 0.5 / sum(len(s.labels) for s in shifts)
        x, y = logit(np.clip(src, h_src, 1 - h_src)), logit(np.clip(shf, h_shf, 1 - h_shf))
        line = linregress(x[fit], y[fit])
        drop = src - shf
        return {"source": src, "shift": shf, "drop": drop, "vs": drop - drop[reference],
                "er": shf - expit(line.slope * x + line.intercept), "slope": line.slope, "intercept": line.intercept}

    point = statistics(source.correct.mean(1), np.mean([s.correct.mean(1) for s in shifts], axis=0))
    draws = [stratified_resamples(source.labels, bootstrap.resamples, bootstrap.seed)] + \
        [stratified_resamples(s.labels, bootstrap.resamples, bootstrap.seed + 1 + j) for j, s in enumerate(shifts)]
    resampled = []
    for indices in zip(*draws):
        src = source.correct[:, indices[0]].mean(1)
        shf = np.mean([s.correct[:, i].mean(1) for s, i in zip(shifts, indices[1:])], axis=0)
        resampled.append(statistics(src, shf))
    return point, {key: np.array([r[key] for r in resampled]) for key in point}


@pytest.mark.parametrize("shift_ns", [(90,), (90, 60)], ids=["one shift set", "two averaged"])
def test_every_interval_matches_a_loop_over_the_resamples(shift_ns):
    source, shifts = random_case(1, shift_ns=shift_ns)
    bootstrap, reference, fit = Bootstrap(resamples=400, seed=11, confidence=0.9), 2, [0, 1, 3, 4, 5, 7]
    result = evaluate_shift(source, shifts, bootstrap, reference=reference, fit_set=fit)
    point, resampled = independent(source, shifts, bootstrap, reference, fit)
    for name, key in (("source", "source"), ("shift", "shift"), ("drop", "drop"), ("drop_vs_reference", "vs"),
                      ("effective_robustness", "er")):
        estimate = getattr(result, name)
        assert np.allclose(estimate.value, point[key], atol=1e-12), name
        for h in range(len(source.correct)):
            low, high = percentile_interval(resampled[key][:, h], 0.9)
            assert (float(estimate.low[h]), float(estimate.high[h])) == pytest.approx((low, high), abs=1e-12), name
    for name in ("slope", "intercept"):
        estimate = getattr(result.fit, name)
        assert float(estimate.value) == pytest.approx(point[name], abs=1e-12)
        assert (float(estimate.low), float(estimate.high)) == pytest.approx(
            percentile_interval(resampled[name], 0.9), abs=1e-12)
    differences = resampled["vs"]
    rarer = np.minimum((differences <= 0).sum(0), (differences >= 0).sum(0))
    assert np.allclose(result.p_value, np.minimum(1, 2 * (rarer + 1) / 401))
    assert result.p_value[reference] == 1 and result.fit.points.tolist() == fit
    assert result.fit.source_clip == 0.5 / 120 and result.fit.shift_clip == 0.5 / sum(shift_ns)
    # the clipped classifier: source top-1 1, logit taken at 1 - 0.5 / 120
    assert float(result.source.value[-1]) == 1 and np.isfinite(result.effective_robustness.value[-1])


def test_the_source_interval_is_the_one_every_other_stage_draws():
    """Same seed, same stratified resamples: a classifier's source interval is bootstrap_interval's."""
    source, shifts = random_case(2)
    predictions = np.where(source.correct[3] == 1, source.labels, (source.labels + 1) % 4)
    result = evaluate_shift(source, shifts, Bootstrap(resamples=200, seed=4, confidence=0.95), reference=0,
                            fit_set=[1, 2])
    interval = bootstrap_interval(source.labels, predictions, 200, 4, 0.95)
    assert (round(float(result.source.low[3]), 6), round(float(result.source.high[3]), 6)) == \
        (interval["top1_low"], interval["top1_high"])


def test_resampled_accuracies_average_runs_fractions_as_the_mean_classifier():
    labels = np.arange(30) % 3
    runs = np.random.default_rng(0).random((3, 30)) < 0.6
    test = TestSet(runs.mean(0, keepdims=True), labels)
    by_counts = resampled_accuracies(test, 70, 9)[:, 0]
    by_loop = [runs[:, indices].mean() for indices in stratified_resamples(labels, 70, 9)]
    assert np.allclose(by_counts, by_loop, atol=1e-12)


def test_mistakes_are_one_line_errors():
    source, shifts = random_case(3)
    bootstrap = Bootstrap(resamples=10)
    with pytest.raises(UserError, match="reference: 8 is no classifier index"):
        evaluate_shift(source, shifts, bootstrap, reference=8, fit_set=[0, 1])
    with pytest.raises(UserError, match="at least two classifiers"):
        evaluate_shift(source, shifts, bootstrap, reference=0, fit_set=[1, 1])
    with pytest.raises(UserError, match="3 indices"):
        evaluate_shift(source, shifts, bootstrap, reference=0, fit_set=[0, 1], curves=[[0, 1]])
    with pytest.raises(UserError, match="same source top-1"):
        same = TestSet(np.ones((2, 8)) * 0.5, np.arange(8) % 2)
        evaluate_shift(same, [same], bootstrap, reference=0, fit_set=[0, 1])
    with pytest.raises(UserError, match="same 8 classifiers"):
        evaluate_shift(source, [TestSet(np.ones((2, 5)), np.arange(5))], bootstrap, reference=0, fit_set=[0, 1])
    with pytest.raises(UserError, match="fractions from 0 to 1"):
        TestSet(np.full((1, 3), 2.0), np.arange(3))
    with pytest.raises(UserError, match="confidence"):
        evaluate_shift(source, shifts, Bootstrap(resamples=10, confidence=1.5), reference=0, fit_set=[0, 1])
