"""A model's metrics files read together, with an analysis of the errors from the confusion files: what the
report and its figures are made from.

Errors and per-class accuracy use one class list: the sorted union of the class names in the
confusion files (a class counts when it is an actual class of some test image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from clip_study.evaluation.metrics import confusion_matrix, most_confused_pairs, per_class_accuracy
from clip_study.metrics_files import fewshot, heldout, logreg, probe, similarity, summary, zeroshot, zsinit
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.heldout import HeldoutMetrics
from clip_study.metrics_files.logreg import LogregMetrics, SweepRow
from clip_study.metrics_files.probe import ProbeCurveRow, ProbeMetrics
from clip_study.metrics_files.report import PerClassRow
from clip_study.metrics_files.scores import CLASSIFIERS, ConfusionRow
from clip_study.metrics_files.similarity import SimilarityMetrics
from clip_study.metrics_files.summary import PairedMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics, ZeroshotScores
from clip_study.metrics_files.zsinit import ZsinitMetrics

DEFINED = {file.name: file for module in (zeroshot, similarity, probe, logreg, fewshot, zsinit, heldout, summary)
           for file in module.FILES}
REQUIRED = ("zeroshot", "similarity", "probe", "probe_curve")
READ = {name: DEFINED[name] for name in (*REQUIRED, "heldout", "logreg", "logreg_sweep", "fewshot",
                                         "confusion_zeroshot", "confusion_probe", "confusion_logreg", "paired",
                                         "zsinit")}
"""The metrics files of a model that the report reads, by name (the file name without .json)."""
OPTIONAL = {name: f"{file.stage} stage" + (" of the offline demo" if file.stage == "heldout" else "")
            for name, file in READ.items() if name not in REQUIRED}
"""The files the report does without, and what writes each (named when one is missing)."""
SHORT_NAMES = dict(zip(CLASSIFIERS, ("zero-shot", "probe", "logreg")))
"""Each classifier's name in a model's report, whose tables and legends are narrow (the leaderboard's: FULL_NAMES)."""


@dataclass(frozen=True)
class ErrorAnalysis:
    """What the confusion files say about the errors, over one class list."""

    names: list[str]  # the class list: the sorted names of every class in a confusion file, actual or predicted
    per_class: list[PerClassRow]  # every class that is some test image's actual class, by name
    worst: list[PerClassRow]  # the 15 rows with the lowest zero-shot recall
    pairs: dict[str, list[dict[str, Any]]]  # classifier key -> its most confused (actual, predicted, count) pairs
    matrices: dict[str, np.ndarray]  # classifier key -> its confusion matrix over names (row: actual)


@dataclass(frozen=True)
class ModelResults:
    """Every metrics file of one model's study (None: an optional one is missing), and the errors."""

    zeroshot: ZeroshotMetrics
    similarity: SimilarityMetrics
    probe: ProbeMetrics
    probe_curve: list[ProbeCurveRow]
    heldout: HeldoutMetrics | None
    logreg: LogregMetrics | None
    logreg_sweep: list[SweepRow] | None
    fewshot: FewshotMetrics | None
    paired: PairedMetrics | None
    zsinit: ZsinitMetrics | None
    confusion: dict[str, list[ConfusionRow] | None]  # classifier key -> its confusion file's rows
    errors: ErrorAnalysis | None  # None without any confusion file


def load_model_results(metrics_dir: Path, fix: Callable[[str], str] | None = None) -> ModelResults:
    """Every metrics file of ``metrics_dir`` the report reads, and the errors (``analyse_errors``).
    ``fix(stage)`` says how to write again a damaged file that ``stage`` writes."""
    def read(name: str) -> Any:
        path = metrics_dir / f"{name}.json"
        if name not in REQUIRED and not path.exists():
            return None
        return READ[name].read(path, fix=fix(READ[name].stage) if fix else None)

    files = {name: read(name) for name in READ}
    if files["heldout"] is not None and not files["heldout"].held_out_classes:
        files["heldout"] = None  # a dataset with no class held out of pretraining: nothing to report
    confusion = {key: files.pop(f"confusion_{key}") for key in CLASSIFIERS}
    return ModelResults(**files, confusion=confusion, errors=analyse_errors(confusion))


def shorten(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def prompt_rows(zeroshot: ZeroshotMetrics) -> list[tuple[str, str, ZeroshotScores]]:
    """(kind, label, scores) of every template and ensemble, best top-1 first."""
    rows = [("template", t.template, t.scores) for t in zeroshot.templates.values()]
    rows += [("ensemble", f"{key} ({e.num_templates or 'per-class'} prompts)", e.scores)
             for key, e in (zeroshot.ensembles or {}).items()]
    return sorted(rows, key=lambda row: -row[2].test.top1)


def chosen_label(zeroshot: ZeroshotMetrics) -> str:
    """The ``prompt_rows`` label of the zero-shot classifier chosen on train images."""
    chosen = zeroshot.results()[zeroshot.best]
    return next(label for kind, label, scores in prompt_rows(zeroshot) if scores is chosen)


def held_out_classes(m: ModelResults) -> set[str]:
    """The demo's classes held out of pretraining (none without heldout.json)."""
    return set(m.heldout.held_out_classes) if m.heldout else set()


def analyse_errors(confusion: dict[str, list[ConfusionRow] | None]) -> ErrorAnalysis | None:
    """Confusion matrices, most confused pairs and per-class accuracy from the confusion files."""
    rows = {key: data for key, data in confusion.items() if data}
    if not rows:
        return None
    names = sorted({name for data in rows.values() for r in data for name in (r.actual, r.predicted)})
    index = {name: i for i, name in enumerate(names)}
    arrays = {key: (np.array([index[r.actual] for r in data]), np.array([index[r.predicted] for r in data]))
              for key, data in rows.items()}
    accuracy = {key: per_class_accuracy(*a, len(names)) for key, a in arrays.items()}
    per_class = [PerClassRow(class_name=name, **{key: round(float(accuracy[key][index[name]]), 6)
                                                 if key in accuracy else None for key in CLASSIFIERS})
                 for name in sorted({r.actual for data in rows.values() for r in data})]
    ranked = sorted(per_class, key=lambda r: (1 if r.zeroshot is None else r.zeroshot, r.class_name))
    return ErrorAnalysis(names=names, per_class=per_class, worst=ranked[:15],
                         pairs={key: most_confused_pairs(*a, names) for key, a in arrays.items()},
                         matrices={key: confusion_matrix(*a, len(names)) for key, a in arrays.items()})
