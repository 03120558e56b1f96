"""Metrics equal scikit-learn's and hand-computed values."""

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             top_k_accuracy_score)

from clip_study.evaluation.metrics import (classification_metrics, confusion_matrix as our_confusion_matrix,
                                          overtaking_k, spread)


def test_known_values():
    labels = np.array([0, 1, 2, 2])
    scores = np.array([[0.9, 0.1, 0.0],   # right
                       [0.8, 0.1, 0.1],   # wrong (0), label 1 second
                       [0.1, 0.2, 0.7],   # right
                       [0.5, 0.4, 0.1]])  # wrong (0), label 2 last
    m = classification_metrics(labels, scores)
    assert m["top1"] == 0.5
    assert m["top5"] == 1.0  # k is capped at the number of classes
    # per class F1: class 0: p=1/3 r=1 -> 0.5; class 1: 0; class 2: p=1 r=0.5 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0 + 2 / 3) / 3, abs=1e-6)
    assert m["mean_per_class_recall"] == pytest.approx((1 + 0 + 0.5) / 3, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_equal_to_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 12, 500)
    labels[labels == 11] = 10  # class 11 never in the labels
    scores = rng.normal(size=(500, 12)) + 1.5 * np.eye(12)[labels]
    scores[:, 3] -= 10  # class 3 never predicted
    m = classification_metrics(labels, scores)
    predictions = scores.argmax(1)
    classes = np.arange(12)
    assert m["top1"] == pytest.approx(accuracy_score(labels, predictions), abs=1e-6)
    assert m["top5"] == pytest.approx(top_k_accuracy_score(labels, scores, k=5, labels=classes), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(f1_score(labels, predictions, labels=classes, average="macro",
                                                   zero_division=0), abs=1e-6)
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        balanced = balanced_accuracy_score(labels, predictions)
    assert m["mean_per_class_recall"] == pytest.approx(balanced, abs=1e-6)
    assert 0.3 < m["top1"] < m["top5"] < 1


def test_macro_f1_counts_classes_never_predicted():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=float)
    # class 0: p=0.5 r=1 -> 2/3; classes 1 and 2 score 0
    assert classification_metrics(labels, scores)["macro_f1"] == pytest.approx(2 / 9, abs=1e-6)


def test_spread():
    assert spread(np.array([1.0, 2.0, 3.0])) == {"min": 1.0, "max": 3.0, "mean": 2.0,
                                                 "std": pytest.approx(0.816497, abs=1e-6)}


def test_two_classes_with_one_missing_from_the_labels():
    """sklearn reads two score columns as a binary problem; top-5 of 2 classes is 1 by definition."""
    labels = np.array([0, 0, 0])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    m = classification_metrics(labels, scores)
    assert m["top1"] == pytest.approx(2 / 3, abs=1e-6) and m["top5"] == 1.0


def test_confusion_matrix_equals_sklearn():
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    labels[labels == 6] = 5  # a class never the answer
    assert np.array_equal(our_confusion_matrix(labels, predictions, 8),
                          confusion_matrix(labels, predictions, labels=np.arange(8)))


FEWSHOT_CURVE = [(1, 0.5), (2, 0.7), (4, 0.65), (80, 0.9)]  # (k, mean top-1)


def test_overtaking_k_is_the_first_k_that_beats_zero_shot():
    assert overtaking_k(FEWSHOT_CURVE, 0.6) == 2
    assert overtaking_k(FEWSHOT_CURVE, 0.7) == 80  # equal is not better
    assert overtaking_k(FEWSHOT_CURVE, 0.4) == 1
    assert overtaking_k(FEWSHOT_CURVE, 0.95) is None
