"""The CLIP paper's linear-probe protocol: scikit-learn L-BFGS logistic regression on frozen, L2-normalised
image embeddings, its inverse regularisation C chosen on a validation split carved from train."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits  # installed with scikit-learn, which uses it itself

from clip_study.data.features import count_classes
from clip_study.evaluation.similarity import l2_normalize


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float, seed: int) -> LogisticRegression:
    """Multinomial logistic regression on L2-normalised ``x``.

    CLIP's probes use normalised features, and then the scale of C does not depend on the embedding norm
    (a model with larger embeddings would otherwise need a different C range). BLAS runs on one thread:
    the matrices are small, multi-threaded OpenBLAS spins on a busy CPU (measured 28 s against 0.5 s for
    one fit on 2 shared cores), and threaded OpenBLAS changed the fit from run to run (123 against 114
    L-BFGS iterations on the same data); on one thread it is repeatable.
    """
    model = LogisticRegression(C=C, max_iter=1000, solver="lbfgs", random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # sklearn guesses "regression?" when over half the samples have distinct labels: 1-shot has one
        # sample per class by design, and the labels are class indices.
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        return model.fit(l2_normalize(x), y)


def decision_scores(model: LogisticRegression, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, num_classes) float32 decision scores of ``x``, normalised as in ``fit_logistic``.

    Columns follow the labels 0..num_classes-1 even when the model saw fewer classes (a class absent
    from train scores below every other) or only two (sklearn then returns one column).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        raw = model.decision_function(l2_normalize(x))
    if raw.ndim == 1:
        raw = np.stack([-raw, raw], axis=1) / 2
    scores = np.full((len(x), num_classes), raw.min() - 1.0, dtype=np.float32)
    scores[:, model.classes_] = raw
    return scores


def sweep_C(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
            Cs: np.ndarray, seed: int) -> list[dict[str, float]]:
    """Validation top-1 for each C: one row {"C", "log10_C", "val_top1"} per C, in the order given."""
    num_classes = count_classes(train_y, val_y)
    rows = []
    for C in Cs:
        scores = decision_scores(fit_logistic(train_x, train_y, float(C), seed), val_x, num_classes)
        rows.append({"C": float(C), "log10_C": round(float(np.log10(C)), 6),
                     "val_top1": round(float(accuracy_score(val_y, scores.argmax(axis=1))), 6)})
    return rows


def best_C(sweep: list[dict[str, float]]) -> float:
    """The C with the highest validation top-1; on a tie the smaller C, i.e. the stronger regularisation
    (the simpler model among equally good ones, and the less likely to be overfitting the validation split)."""
    if not sweep:
        raise ValueError("best_C: empty sweep")
    return min(sweep, key=lambda row: (-row["val_top1"], row["C"]))["C"]


def C_grid(C_min: float, C_max: float, steps: int) -> np.ndarray:
    """``steps`` values of C, log-spaced from ``C_min`` to ``C_max`` (0 < C_min <= C_max)."""
    return np.logspace(np.log10(C_min), np.log10(C_max), steps)
