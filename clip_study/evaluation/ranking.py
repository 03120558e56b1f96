"""Models compared over several datasets, as LAION's CLIP_benchmark ranks them: each model's mean top-1 over the
datasets and its average rank (the models ranked on each dataset, 1 the best, the ranks averaged over the
datasets), each with a paired bootstrap interval.

A mean or an average rank moves with every dataset's test noise, so each gets an interval the way a single top-1
does (``intervals``): every dataset's test images are resampled within each class, and each draw is shared by
every model, so that models are compared on the same resampled images, as the paired tests compare them on the
same test images. Pure numpy, like ``intervals``.
"""

from __future__ import annotations

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.intervals import Bootstrap, percentile_interval, stratified_resamples


def dataset_ranks(top1: np.ndarray) -> np.ndarray:
    """The rank of each model on each dataset from (M, D, ...) top-1: 1 for the best; tied models share the mean
    of the ranks they span (pandas' ``rank(ascending=False)``, CLIP_benchmark's ranking)."""
    better = (top1[None, :] > top1[:, None]).sum(axis=1)  # [m] counts the models j with top1[j] > top1[m]
    tied = (top1[None, :] == top1[:, None]).sum(axis=1)  # model m itself included
    return 1 + better + (tied - 1) / 2


def resampled_top1(correct: list[np.ndarray], labels: list[np.ndarray], bootstrap: Bootstrap) -> np.ndarray:
    """(M, D, R) top-1 of each of M models on each of D datasets' R resamples, from each dataset's (M, N_d)
    correctness and its N_d test labels. Dataset d's resamples are ``stratified_resamples`` of its labels with
    seed ``bootstrap.seed + d`` (the first dataset draws as a single top-1's interval does), shared by every
    model."""
    top1 = np.empty((len(correct[0]), len(correct), bootstrap.resamples))
    for d, (right, dataset_labels) in enumerate(zip(correct, labels)):
        for r, indices in enumerate(stratified_resamples(dataset_labels, bootstrap.resamples, bootstrap.seed + d)):
            top1[:, d, r] = right[:, indices].mean(axis=1)
    return top1


def across_datasets(correct: list[np.ndarray], labels: list[np.ndarray],
                    bootstrap: Bootstrap) -> list[dict[str, float]]:
    """Per model (the rows of each (M, N_d) correctness array, in order): ``mean_top1`` over the D datasets and
    ``average_rank``, each with ``_low`` and ``_high``, the percentile interval of the statistic over the paired
    resamples (``resampled_top1``); rounded to 6 decimals like every score."""
    _check_correctness(correct, labels)
    point = np.stack([right.mean(axis=1) for right in correct], axis=1)  # (M, D)
    resampled = resampled_top1(correct, labels, bootstrap)
    statistics = {"mean_top1": (point.mean(axis=1), resampled.mean(axis=1)),
                  "average_rank": (dataset_ranks(point).mean(axis=1), dataset_ranks(resampled).mean(axis=1))}
    models = []
    for m in range(len(point)):
        values = {}
        for name, (points, draws) in statistics.items():
            low, high = percentile_interval(draws[m], bootstrap.confidence)
            values |= {name: points[m], f"{name}_low": low, f"{name}_high": high}
        models.append({name: round(float(value), 6) for name, value in values.items()})
    return models


def _check_correctness(correct: list[np.ndarray], labels: list[np.ndarray]) -> None:
    """One (M, N_d) boolean array per dataset, the same M models in each, N_d its labels' count."""
    if not correct or len(correct) != len(labels):
        raise UserError(f"pass one correctness array per dataset and one labels array each (got {len(correct)} "
                        f"and {len(labels)})")
    for d, (right, dataset_labels) in enumerate(zip(correct, labels)):
        if right.dtype != bool or right.ndim != 2 or right.shape != (len(correct[0]), len(dataset_labels)):
            raise UserError(f"dataset {d}: correctness of shape {right.shape} ({right.dtype}) must be boolean "
                            f"(models, test images) = ({len(correct[0])}, {len(dataset_labels)})")
