"""The CLIP paper's few-shot curve: the logistic probe trained on k random train images per class
(several seeds per k), each tested on the full test set."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from clip_study.data.features import count_classes
from clip_study.data.subset import cap_per_class
from clip_study.errors import UserError
from clip_study.evaluation.heads import LinearHead
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.logistic import decision_scores, fit_logistic, linear_head
from clip_study.evaluation.metrics import classification_metrics, spread


def few_shot_indices(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Sorted indices of k seeded random examples per class (all of a class that has fewer than k)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k = {k!r} must be a whole number of training images per class >= 1")
    return cap_per_class(labels, int(k), seed)


def shot_counts(shots: list[int | str], k_all: int) -> tuple[list[int], list[int]]:
    """The distinct k of ``shots`` below ``k_all`` (the train images of the largest class), sorted, and
    those at or above it, which the "all" point (always added) already covers. An "all" entry is skipped."""
    counts = {k for k in shots if k != "all"}
    return sorted(k for k in counts if k < k_all), sorted(k for k in counts if k >= k_all)


class CurveRuns(NamedTuple):
    """A point of the curve and its runs: their probes as heads (one per seed) and their test predictions (runs, N)."""

    point: dict[str, Any]
    heads: list[LinearHead]
    predictions: np.ndarray


def curve_point(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                k: int, label: str, C: float, seeds: list[int], bootstrap: Bootstrap) -> CurveRuns:
    """Test top-1 over ``seeds`` runs of the probe on k images per class ("all": every train image, one run),
    with the bootstrap interval of the mean over runs (the test images' share of the noise); the runs' heads are
    kept so that other images can be scored without fitting again."""
    num_classes = count_classes(train_y, test_y)
    top1, predictions, heads = [], [], []
    for seed in seeds:
        indices = np.arange(len(train_y)) if label == "all" else few_shot_indices(train_y, k, seed)
        model = fit_logistic(train_x[indices], train_y[indices], C, seed)
        scores = decision_scores(model, test_x, num_classes)
        top1.append(classification_metrics(test_y, scores)["top1"])
        predictions.append(scores.argmax(axis=1))
        heads.append(linear_head(model, num_classes))
    stats, interval = spread(np.array(top1)), bootstrap.interval(test_y, np.stack(predictions), num_classes)
    point = {"k": k, "label": label, "runs": len(seeds),
             **{f"{name}_top1": stats[name] for name in ("mean", "std", "min", "max")},
             "top1_low": interval["top1_low"], "top1_high": interval["top1_high"]}
    return CurveRuns(point, heads, np.stack(predictions).astype(np.int64))
