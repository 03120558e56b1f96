"""What the shift stage reports, from the heads files a source's fitting stages left: which classifiers (a
few-shot k's seeded runs averaged into one), which heads make the fit set, their correctness on the source and
the shift test images, the predictions file the leaderboard averages a source's shift sets from, and the records.

The predictions file keeps per-image correctness (not predictions), so that the leaderboard can run
``evaluate_shift`` over several shift sets of one source with the same rows, references and fit set as here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clip_study.errors import BadFileError, UserError
from clip_study.evaluation.heads import Heads, load_heads
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.shift import (Estimate, ShiftEvaluation, TestSet, head_predictions, shift_correct)
from clip_study.files import load_npz, save_npz
from clip_study.metrics_files.shift import (CurveCheck, DropComparison, FitPoint, LogitFit, ShiftAlphaRow,
                                            ShiftMetrics, ShiftRow)
from clip_study.metrics_files.shift import Estimate as EstimateRecord

HEAD_FILES = ("zeroshot", "probe", "logreg", "fewshot", "zsinit", "wiseft")
"""The heads files of a source, in the order their classifiers are reported: every one is required (the pipeline
runs every fitting stage), so a shift table never lacks a classifier silently."""
FIT_KINDS = ("fewshot", "logreg_sweep")
"""Kinds whose every head is a point of the logit-axis fit: probes fitted on the source alone, across k and C."""
UNREPORTED = ("logreg_sweep",)
"""Kinds that are fit points only (the sweep's chosen C is the logreg row)."""
CURVES = ("wiseft_logreg", "wiseft_zsinit")
"""Kinds that are alpha curves, one head per alpha from 0 (zero-shot) to 1 (the fitted head)."""


@dataclass(frozen=True)
class Classifier:
    """A row: its name and kind, what marks it, and the heads (file, index) whose correctness it averages."""

    name: str
    kind: str
    chosen: bool
    k: str | None
    alpha: float | None
    heads: list[tuple[str, int]]
    fit: bool  # a fit-set point, not a reported row


@dataclass(frozen=True)
class ShiftScores:
    """Every row's correctness on the source's and the shift's test images (runs averaged), and which rows are the
    reference zero-shot classifier, the fit set and the alpha curves (rows, alpha ascending)."""

    rows: list[Classifier]
    source: TestSet
    shift: TestSet
    reference: int
    fit_set: list[int]
    curves: dict[str, list[int]]


def read_heads(folder: str | Path, fix: str) -> dict[str, Heads]:
    """The heads files of one source, by file name; all must score the same classes and test images."""
    folder = Path(folder)
    found = {name: load_heads(folder / f"{name}.npz", fix) for name in HEAD_FILES}
    first = found["zeroshot"]
    chosen = len(first.where(classifier="zeroshot", chosen=True))
    if chosen != 1:
        raise BadFileError(folder / "zeroshot.npz", f"marks {chosen} zero-shot heads as chosen, not one", fix)
    for name, heads in found.items():
        if not np.array_equal(heads.labels, first.labels) or heads.heads[0].weights.shape[0] != \
                first.heads[0].weights.shape[0]:
            raise BadFileError(folder / f"{name}.npz", "scores other classes or test images than zeroshot.npz", fix)
    return found


def classifiers(heads: dict[str, Heads]) -> list[Classifier]:
    """The reported rows in the files' order (a head with a seed joins its name's other seeds), then the fit set."""
    reported: dict[str, Classifier] = {}
    fit = []
    for file, found in heads.items():
        for index, info in enumerate(found.info):
            kind, name = str(info["classifier"]), str(info["name"])
            if kind in FIT_KINDS:
                fit.append(Classifier(name, kind, False, None, None, [(file, index)], True))
            if kind in UNREPORTED:
                continue
            key = name.rsplit("/seed=", 1)[0] if "seed" in info else name
            if key in reported:
                reported[key].heads.append((file, index))
                continue
            reported[key] = Classifier(key, kind, bool(info.get("chosen")) and (kind == "zeroshot" or kind in CURVES),
                                       str(info["label"]) if "label" in info else None,
                                       float(info["alpha"]) if kind in CURVES else None, [(file, index)], False)
    return [*reported.values(), *fit]


def score(heads: dict[str, Heads], features: np.ndarray, shift_labels: np.ndarray, accepts: np.ndarray) -> ShiftScores:
    """Apply every head to the shift features (logits restricted to the matched source classes) and average each
    row's runs; the source's correctness comes from the predictions the heads files keep."""
    rows, allowed = classifiers(heads), accepts.any(axis=0)
    zero_shots = [i for i, row in enumerate(rows) if row.kind == "zeroshot" and row.chosen]  # one: read_heads
    needed = {member for row in rows for member in row.heads}
    on_source = {(file, i): heads[file].predictions[i] == heads[file].labels for file, i in needed}
    on_shift = {(file, i): shift_correct(head_predictions(heads[file].heads[i], features, allowed), shift_labels,
                                         accepts) for file, i in needed}

    def averaged(correct: dict) -> np.ndarray:  # float32: what the predictions file stores, so both evaluate alike
        return np.stack([np.mean([correct[m] for m in row.heads], axis=0) for row in rows]).astype(np.float32)

    return ShiftScores(rows=rows, source=TestSet(averaged(on_source), heads["zeroshot"].labels),
                       shift=TestSet(averaged(on_shift), shift_labels), reference=zero_shots[0],
                       fit_set=[i for i, row in enumerate(rows) if row.fit],
                       curves=alpha_curves([row.kind for row in rows], [row.alpha for row in rows]))


def alpha_curves(kinds: list[str], alphas: list[float | None]) -> dict[str, list[int]]:
    """Each WiSE-FT curve's rows (indices), alpha ascending, where it has alpha 0, 1 and a point between: the
    curves ``evaluate_shift`` checks."""
    curves = {}
    for kind in CURVES:
        members = sorted((alpha, i) for i, (k, alpha) in enumerate(zip(kinds, alphas)) if k == kind)
        if len(members) >= 3 and members[0][0] == 0 and members[-1][0] == 1:
            curves[kind] = [i for _, i in members]
    return curves


def save_predictions(path: Path, scores: ShiftScores) -> None:
    """The leaderboard's input: ``source_correct`` (H, N) and ``shift_correct`` (H, M) float32 (runs averaged),
    ``source_labels`` and ``shift_labels``, ``names`` and ``kinds`` (JSON lists as UTF-8 bytes), and (H,) bool masks
    ``fit_set`` (the fit's points) and ``reference`` (True at the chosen zero-shot row only)."""
    text = {key: np.frombuffer(json.dumps(values).encode(), dtype=np.uint8)
            for key, values in (("names", [r.name for r in scores.rows]), ("kinds", [r.kind for r in scores.rows]))}
    save_npz(path, source_correct=scores.source.correct.astype(np.float32), source_labels=scores.source.labels,
             shift_correct=scores.shift.correct.astype(np.float32), shift_labels=scores.shift.labels, **text,
             fit_set=np.array([r.fit for r in scores.rows]), reference=np.arange(len(scores.rows)) == scores.reference)


@dataclass(frozen=True)
class ShiftPredictions:
    """A predictions file read back: pass ``source``, the ``shift`` of each of a source's files, ``reference`` and
    ``fit_set`` to ``evaluate_shift``."""

    names: list[str]
    kinds: list[str]
    source: TestSet
    shift: TestSet
    reference: int
    fit_set: list[int]


def load_predictions(path: str | Path, fix: str) -> ShiftPredictions:
    arrays = load_npz(path, fix)
    try:
        names, kinds = (json.loads(arrays[key].astype(np.uint8).tobytes().decode()) for key in ("names", "kinds"))
        source = TestSet(arrays["source_correct"], arrays["source_labels"])
        shift = TestSet(arrays["shift_correct"], arrays["shift_labels"])
        fit, reference = arrays["fit_set"], np.flatnonzero(arrays["reference"])
        if not len(names) == len(kinds) == len(fit) == len(arrays["reference"]) == len(source.correct) == \
                len(shift.correct) or len(reference) != 1:
            raise ValueError("names, kinds, the masks and the correctness rows disagree in count, or no one reference")
        return ShiftPredictions(names, kinds, source, shift, int(reference[0]), np.flatnonzero(fit).tolist())
    except (ValueError, UnicodeDecodeError, UserError) as error:
        raise BadFileError(path, f"is not a shift predictions file ({error})", fix) from error


def estimate_record(estimate: Estimate, index: int | tuple = ()) -> EstimateRecord:
    """One entry of an evaluation's estimate as written (6 decimals)."""
    value, low, high = (round(v, 6) for v in estimate.at(index))
    return EstimateRecord(value=value, low=low, high=high)


def drop_comparison(evaluation: ShiftEvaluation, index: int) -> DropComparison:
    """A classifier's drop minus the reference's, with its p-value, as written."""
    value, low, high = (round(v, 6) for v in evaluation.drop_vs_reference.at(index))
    return DropComparison(value=value, low=low, high=high, p_value=round(float(evaluation.p_value[index]), 6))


def fit_record(evaluation: ShiftEvaluation, names: list[str]) -> LogitFit:
    """The evaluation's logit-axis fit and its points (``names``: every row's name), as written."""
    fit = evaluation.fit
    points = [FitPoint(name=names[i], source_top1=round(float(evaluation.source.value[i]), 6),
                       shift_top1=round(float(evaluation.shift.value[i]), 6)) for i in fit.points]
    return LogitFit(slope=estimate_record(fit.slope), intercept=estimate_record(fit.intercept), count=len(points),
                    source_clip=round(fit.source_clip, 9), shift_clip=round(fit.shift_clip, 9), points=points)


def curve_records(curves: dict[str, list[int]], alphas: list[float | None],
                  evaluation: ShiftEvaluation) -> list[CurveCheck]:
    """The check of each alpha curve (``curves`` as ``alpha_curves`` gives them, in the evaluation's order)."""
    checks = []
    for (kind, members), check in zip(curves.items(), evaluation.curves):
        best, ends = members[check.best], (members[0], members[-1])
        difference = estimate_record(check.difference)
        checks.append(CurveCheck(curve=kind, best_alpha=alphas[best],
                                 best_shift_top1=round(float(evaluation.shift.value[best]), 6),
                                 ends_shift_top1=round(float(max(evaluation.shift.value[e] for e in ends)), 6),
                                 difference=difference, beats_both_ends=difference.low > 0))
    return checks


def shift_metrics(shift: str, source: str, scores: ShiftScores, evaluation: ShiftEvaluation, bootstrap: Bootstrap,
                  num_shift_classes: int, num_source_classes: int, matched: int) -> ShiftMetrics:
    """The shift.json record of one evaluation over ``scores`` (one shift set)."""
    rows = []
    for i, row in enumerate(scores.rows):
        if row.fit:
            continue
        rows.append(ShiftRow(
            name=row.name, classifier=row.kind, chosen=row.chosen, k=row.k, alpha=row.alpha, runs=len(row.heads),
            source=estimate_record(evaluation.source, i), shift=estimate_record(evaluation.shift, i),
            drop=estimate_record(evaluation.drop, i),
            effective_robustness=estimate_record(evaluation.effective_robustness, i),
            drop_vs_zero_shot=drop_comparison(evaluation, i)))
    names, alphas = [row.name for row in scores.rows], [row.alpha for row in scores.rows]
    return ShiftMetrics(
        shift=shift, source=source, num_images=len(scores.shift.labels), num_source_images=len(scores.source.labels),
        num_shift_classes=num_shift_classes, num_source_classes=num_source_classes,
        matched_source_classes=matched, resamples=bootstrap.resamples, confidence=bootstrap.confidence,
        seed=bootstrap.seed, reference=scores.rows[scores.reference].name, classifiers=rows,
        fit=fit_record(evaluation, names), curves=curve_records(scores.curves, alphas, evaluation))


def curve_points(curves: dict[str, list[int]], alphas: list[float | None],
                 evaluation: ShiftEvaluation) -> list[ShiftAlphaRow]:
    """Every point of each alpha curve, alpha ascending, on source and shift."""
    return [ShiftAlphaRow(curve=kind, alpha=alphas[i], source_top1=round(float(evaluation.source.value[i]), 6),
                          shift_top1=round(float(evaluation.shift.value[i]), 6))
            for kind, members in curves.items() for i in members]


def alpha_rows(scores: ShiftScores, evaluation: ShiftEvaluation) -> list[ShiftAlphaRow]:
    """shift_alpha.json: every point of each alpha curve, alpha ascending."""
    return curve_points(scores.curves, [row.alpha for row in scores.rows], evaluation)
