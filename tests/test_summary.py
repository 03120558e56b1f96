"""Where the few-shot probe overtakes zero-shot."""

from clip_study.evaluation.metrics import overtaking_k

CURVE = [{"k": 1, "mean_top1": 0.5}, {"k": 2, "mean_top1": 0.7}, {"k": 4, "mean_top1": 0.65}, {"k": 80, "mean_top1": 0.9}]


def test_overtaking_k_is_the_first_k_that_beats_zero_shot():
    assert overtaking_k(CURVE, 0.6) == 2
    assert overtaking_k(CURVE, 0.7) == 80  # equal is not better
    assert overtaking_k(CURVE, 0.4) == 1
    assert overtaking_k(CURVE, 0.95) is None
