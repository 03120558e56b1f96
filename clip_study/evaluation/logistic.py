"""The CLIP paper's linear-probe protocol: scikit-learn L-BFGS logistic regression on frozen, L2-normalised
image embeddings, its inverse regularisation C chosen on a validation split carved from train."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from threadpoolctl import threadpool_limits  # installed with scikit-learn, which uses it itself

from clip_study.data.features import count_classes
from clip_study.evaluation.heads import Heads, LinearHead
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


def linear_head(model: LogisticRegression, num_classes: int) -> LinearHead:
    """The fitted probe as a head on L2-normalised features, ranking the classes as ``decision_scores`` does, so
    that other images can be scored without sklearn or a refit: sklearn's weights and intercepts (its one column
    of two classes split into -/+ halves, as there); a class the fit never saw gets zero weights and a bias below
    every other class's logit for any unit-norm image (each logit is at least its bias minus its weights' norm),
    as ``decision_scores`` puts its column below the rest."""
    coef, intercept = np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # two classes: sklearn keeps the second's column only
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weights = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, float(np.min(intercept - np.linalg.norm(coef, axis=1))) - 1.0)
    weights[model.classes_], bias[model.classes_] = coef, intercept
    return LinearHead(weights, bias, True)


class Sweep(NamedTuple):
    """The C sweep: one row {"C", "log10_C", "val_top1"} per C, and the probe fitted at each (kept: its heads
    are saved, and the chosen one's validation scores calibrate the refit)."""

    rows: list[dict[str, float]]
    models: list[LogisticRegression]


def sweep_C(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
            Cs: np.ndarray, seed: int) -> Sweep:
    """Validation top-1 for each C, in the order given, with the probes fitted."""
    num_classes = count_classes(train_y, val_y)
    rows, models = [], []
    for C in Cs:
        models.append(fit_logistic(train_x, train_y, float(C), seed))
        scores = decision_scores(models[-1], val_x, num_classes)
        rows.append({"C": float(C), "log10_C": round(float(np.log10(C)), 6),
                     "val_top1": round(float(accuracy_score(val_y, scores.argmax(axis=1))), 6)})
    return Sweep(rows, models)


def logreg_heads(refit: LogisticRegression, C: float, sweep: Sweep, test: tuple[np.ndarray, np.ndarray],
                 num_classes: int, validation: np.ndarray) -> Heads:
    """The logreg stage's heads file: the headline probe (refitted on all train at the chosen ``C``) and every
    probe of the sweep (fitted without the ``validation`` images, so a mixing weight can be chosen on them), each
    with its predictions on the ``test`` images."""
    test_x, test_y = test
    models = [refit, *sweep.models]
    info = [{"name": "logreg", "classifier": "logreg", "C": float(C)},
            *({"name": f"logreg/C={row['C']:.4g}", "classifier": "logreg_sweep", "C": float(row["C"]),
               "chosen": row["C"] == C} for row in sweep.rows)]
    predictions = np.stack([decision_scores(model, test_x, num_classes).argmax(axis=1) for model in models])
    return Heads([linear_head(model, num_classes) for model in models], info, predictions, test_y, validation)


def best_C(sweep: list[dict[str, float]]) -> float:
    """The C with the highest validation top-1; on a tie the smaller C, i.e. the stronger regularisation
    (the simpler model among equally good ones, and the less likely to be overfitting the validation split)."""
    if not sweep:
        raise ValueError("best_C: empty sweep")
    return min(sweep, key=lambda row: (-row["val_top1"], row["C"]))["C"]


def C_grid(C_min: float, C_max: float, steps: int) -> np.ndarray:
    """``steps`` values of C, log-spaced from ``C_min`` to ``C_max`` (0 < C_min <= C_max)."""
    return np.logspace(np.log10(C_min), np.log10(C_max), steps)
