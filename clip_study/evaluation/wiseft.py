"""WiSE-FT's alpha curve on the source (Wortsman et al. 2022): the weight-space mix (1 - alpha) * zero-shot +
alpha * fitted head, for alpha on WiSE-FT's grid, scored on the source's test images, alpha chosen on images the
fitted head never trained on.

Nothing is fitted here: every head is read from the heads files of the stages that fitted it, with the logit scale
folded into the weights, so the two ends of a mix are on one scale (``heads.mix`` says why that matters). numpy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from clip_study.errors import BadFileError
from clip_study.evaluation.heads import Heads, LinearHead, best_alpha, mix
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.metrics import scored

ALPHAS = tuple(round(0.1 * step, 1) for step in range(11))
"""WiSE-FT's grid, 0, 0.1, ..., 1: fixed, so that every pair's curve has the same points (not a param)."""

Split = tuple[np.ndarray, np.ndarray]  # features, labels


class HeadsFile(NamedTuple):
    """A heads file as read, with where it lies and the fix for a damaged one (the stage that writes it)."""

    heads: Heads
    path: str | Path
    fix: str


def only(file: HeadsFile, **wanted: Any) -> tuple[LinearHead, dict[str, Any]]:
    """The one head of ``file`` whose info has every key = value of ``wanted``; none or several is a BadFileError."""
    found = file.heads.where(**wanted)
    if len(found) != 1:
        raise BadFileError(file.path, f"holds {len(found)} heads with {wanted}, not one", file.fix)
    return file.heads.heads[found[0]], file.heads.info[found[0]]


def check_fits(file: HeadsFile, test: Split, num_classes: int) -> None:
    """A heads file must score these features' classes and be scored on these test images: else it was written
    for other features (a stale file) and its heads would score something else."""
    test_x, test_y = test
    shapes = {head.weights.shape for head in file.heads.heads}
    if shapes != {(num_classes, test_x.shape[1])}:
        raise BadFileError(file.path, f"holds heads of shapes {sorted(shapes)}, not ({num_classes}, "
                                      f"{test_x.shape[1]}) for these features' classes and dimension", file.fix)
    if not np.array_equal(file.heads.labels, test_y):
        raise BadFileError(file.path, f"was written for other test images ({len(file.heads.labels)} labels, these "
                                      f"features have {len(test_y)} that differ)", file.fix)


def validation_of(file: HeadsFile, train: Split) -> Split:
    """The validation images of ``file`` (indices into the train split): its heads' alpha is chosen on them."""
    train_x, train_y = train
    indices = file.heads.validation
    if indices is None or len(indices) == 0 or indices.min() < 0 or indices.max() >= len(train_y):
        raise BadFileError(file.path, f"holds no validation indices into the {len(train_y)} train images", file.fix)
    return train_x[indices], train_y[indices]


class Curve(NamedTuple):
    """One curve: its summary (as ``metrics_files.wiseft.WiseftCurve``), the mix at each alpha and their test
    predictions (alphas, N)."""

    summary: dict[str, Any]
    heads: list[LinearHead]
    predictions: np.ndarray


def curve(zero_shot: LinearHead, fitted: LinearHead, chooser: LinearHead, val: Split, test: Split,
          bootstrap: Bootstrap, alphas: tuple[float, ...] = ALPHAS) -> Curve:
    """mix(zero_shot, fitted, alpha) on the ``test`` images for every alpha, the alpha chosen by the validation
    top-1 of mix(zero_shot, chooser, alpha) (``best_alpha``: the smaller on a tie). ``chooser`` must not have
    trained on ``val``: the refit ``fitted`` usually did, so its own mixes would choose alpha on its train images."""
    (val_x, val_y), (test_x, test_y) = val, test
    val_top1 = {a: float(np.mean(mix(zero_shot, chooser, a).predict(val_x) == val_y)) for a in alphas}
    chosen, chosen_val_top1 = best_alpha(val_top1)
    heads = [mix(zero_shot, fitted, a) for a in alphas]
    rows, predictions = [], []
    for alpha, head in zip(alphas, heads):
        scores = head.logits(test_x)
        rows.append({"alpha": alpha, "val_top1": round(val_top1[alpha], 6), **scored(test_y, scores, bootstrap)})
        predictions.append(scores.argmax(axis=1).astype(np.int64))
    top1 = [row["top1"] for row in rows]
    picked = rows[alphas.index(chosen)]
    summary = {"num_val_images": int(len(val_y)), "chosen_alpha": chosen,
               "chosen_val_top1": round(chosen_val_top1, 6),
               "chosen_test": {name: picked[name] for name in ("top1", "top1_low", "top1_high")},
               "interior_beats_ends": bool(len(top1) > 2 and max(top1[1:-1]) > max(top1[0], top1[-1])),
               "rows": rows}
    return Curve(summary, heads, np.stack(predictions))


class Result(NamedTuple):
    """What the wiseft stage writes: its metrics (as ``WiseftMetrics``), its plot rows, its heads file."""

    metrics: dict[str, Any]
    plot: list[dict[str, Any]]
    heads: Heads


def source_curves(zeroshot: HeadsFile, logreg: HeadsFile, zsinit: HeadsFile, train: Split, test: Split,
                  num_classes: int, bootstrap: Bootstrap) -> Result:
    """Both of WiSE-FT's curves on the source: the zero-shot stage's chosen head mixed with the logistic probe
    refitted on all train (alpha chosen with the sweep's probe at the chosen C, fitted without logreg's validation
    split) and with the zero-shot-initialised head trained on all its fit images (k = all; alpha chosen on zsinit's
    validation split, which it never trained on)."""
    for file in (zeroshot, logreg, zsinit):
        check_fits(file, test, num_classes)
    zero_shot, zero_shot_info = only(zeroshot, classifier="zeroshot", chosen=True)
    ends = {"logreg": (only(logreg, classifier="logreg"), only(logreg, classifier="logreg_sweep", chosen=True),
                       validation_of(logreg, train)),
            "zsinit": (only(zsinit, classifier="zsinit", label="all"), only(zsinit, classifier="zsinit", label="all"),
                       validation_of(zsinit, train))}
    curves, heads, info, predictions, plot = {}, [], [], [], []
    for name, ((fitted, fitted_info), (chooser, chooser_info), val) in ends.items():
        result = curve(zero_shot, fitted, chooser, val, test, bootstrap)
        curves[name] = {"fitted": fitted_info["name"], "chosen_by": chooser_info["name"], **result.summary}
        heads += result.heads
        predictions.append(result.predictions)
        info += [{"name": f"wiseft_{name}/alpha={alpha:g}", "classifier": f"wiseft_{name}", "alpha": alpha,
                  "chosen": alpha == result.summary["chosen_alpha"]} for alpha in ALPHAS]
        plot += [{"curve": name, "alpha": row["alpha"], "val_top1": row["val_top1"], "test_top1": row["top1"]}
                 for row in result.summary["rows"]]
    metrics = {"num_classes": num_classes, "num_test_images": int(len(test[1])), "zero_shot": zero_shot_info["name"],
               "alphas": list(ALPHAS), "curves": curves}
    return Result(metrics, plot, Heads(heads, info, np.concatenate(predictions), test[1]))
