"""Classification metrics, computed by scikit-learn from labels and class scores."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score


def classification_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """top-1, top-5 and macro-F1 of (N, C) ``scores`` against integer ``labels``.

    Every one of the C classes counts in the macro average, even one never predicted.
    """
    classes = np.arange(scores.shape[1])
    predictions = scores.argmax(axis=1)
    with warnings.catch_warnings():  # with <= 5 classes top-5 is 1 by definition; sklearn warns
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        top5 = top_k_accuracy_score(labels, scores, k=min(5, len(classes)), labels=classes)
    return {
        "top1": round(float(accuracy_score(labels, predictions)), 6),
        "top5": round(float(top5), 6),
        "macro_f1": round(float(f1_score(labels, predictions, labels=classes, average="macro",
                                         zero_division=0)), 6),
    }


def spread(values: np.ndarray) -> dict[str, float]:
    """min/max/mean/std of a 1-D array, rounded for readable JSON."""
    return {name: round(float(fn(values)), 6)
            for name, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std))}
