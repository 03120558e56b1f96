"""Classification metrics from labels and class scores, in numpy.

They equal scikit-learn's (accuracy, top_k_accuracy_score, macro f1_score, balanced_accuracy_score;
tests/test_metrics.py checks it) without importing sklearn, which costs every stage of a template
sweep ~2 s.
"""

from __future__ import annotations

import numpy as np

from clip_study.evaluation.intervals import Bootstrap


def classification_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """top-1, top-5, macro-F1 and mean per-class recall of (N, C) ``scores`` against ``labels``.

    Every one of the C classes counts in the macro-F1, even one never predicted (its F1 is 0); the mean
    per-class recall (balanced accuracy) averages the classes present in ``labels``.
    """
    num_classes = scores.shape[1]
    predictions = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, num_classes)
    hits, tested, predicted = matrix.diagonal(), matrix.sum(axis=1), matrix.sum(axis=0)
    k = min(5, num_classes)
    top_k = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    f1 = np.divide(2 * hits, tested + predicted, out=np.zeros(num_classes), where=tested + predicted > 0)
    return {
        "top1": round(float(hits.sum() / len(labels)), 6),
        "top5": round(float((top_k == np.asarray(labels)[:, None]).any(axis=1).mean()), 6),
        "macro_f1": round(float(f1.mean()), 6),
        "mean_per_class_recall": round(float((hits[tested > 0] / tested[tested > 0]).mean()), 6),
    }


def spread(values: np.ndarray) -> dict[str, float]:
    """min/max/mean/std of a 1-D array, rounded for readable JSON."""
    return {name: round(float(fn(values)), 6)
            for name, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std))}


def confusion_rows(labels: np.ndarray, predictions: np.ndarray, names: list[str]) -> list[dict[str, str]]:
    """One {"actual", "predicted"} row per test image: the input of DVC's ``template: confusion`` plot."""
    return [{"actual": names[a], "predicted": names[p]} for a, p in zip(labels, predictions)]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = actual class, column = predicted class."""
    pairs = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall of each class (the diagonal of the row-normalised confusion matrix)."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    return matrix.diagonal() / matrix.sum(axis=1).clip(min=1)


def most_confused_pairs(labels: np.ndarray, predictions: np.ndarray, names: list[str],
                        count: int = 10) -> list[dict[str, object]]:
    """The ``count`` (actual, predicted) class pairs with the most mistakes, most first."""
    matrix = confusion_matrix(labels, predictions, len(names))
    np.fill_diagonal(matrix, 0)
    order = np.argsort(-matrix, axis=None, kind="stable")[:count]
    pairs = [np.unravel_index(i, matrix.shape) for i in order]
    return [{"actual": names[a], "predicted": names[p], "count": int(matrix[a, p])}
            for a, p in pairs if matrix[a, p] > 0]


def overtaking_k(curve: list[tuple[int, float]], zeroshot_top1: float) -> int | None:
    """The fewest labelled images per class whose mean probe top-1 beats zero-shot (None: never), from a few-shot
    curve's (k, mean top-1) points in ascending k."""
    return next((k for k, mean_top1 in curve if mean_top1 > zeroshot_top1), None)


def scored(labels: np.ndarray, scores: np.ndarray, bootstrap: Bootstrap) -> dict[str, float]:
    """``classification_metrics`` with the bootstrap interval of top-1 and macro-F1 beside them."""
    return {**classification_metrics(labels, scores), **bootstrap.interval(labels, scores.argmax(axis=1),
                                                                          scores.shape[1])}


def chosen_key(choice_top1: dict[str, float]) -> str:
    """The classifier chosen by its top-1 on the choice images (classifier key -> that top-1): the first
    highest."""
    return max(choice_top1, key=lambda key: choice_top1[key])
