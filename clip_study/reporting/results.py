"""The study's metrics files read together, with an analysis of the errors from the confusion files:
what the report and its figures are made from.

Errors and per-class accuracy use one class list: the sorted union of the class names in the
confusion files (a class counts when it is an actual class of some test image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from clip_study.evaluation.metrics import confusion_matrix, most_confused_pairs, per_class_accuracy
from clip_study.files import read_json
from clip_study.reporting.summary import CLASSIFIERS, zeroshot_result

WRITTEN_BY = {  # metrics file -> the stage that writes it
    "zeroshot": "zeroshot", "similarity": "similarity", "probe": "probe", "probe_curve": "probe",
    "heldout": "heldout", "logreg": "logreg", "logreg_sweep": "logreg", "fewshot": "fewshot",
    "confusion_zeroshot": "zeroshot", "confusion_probe": "probe", "confusion_logreg": "logreg",
    "paired": "summary", "zsinit": "zsinit"}
REQUIRED = ("zeroshot", "similarity", "probe", "probe_curve")
OPTIONAL = {name: f"{stage} stage" + (" of the offline demo" if stage == "heldout" else "")  # named when missing
            for name, stage in WRITTEN_BY.items() if name not in REQUIRED}
LISTS = {"probe_curve", "logreg_sweep", "confusion_zeroshot", "confusion_probe", "confusion_logreg"}
SHORT_NAMES = dict(zip(CLASSIFIERS, ("zero-shot", "probe", "logreg")))
"""Each classifier's name in a model's report, whose tables and legends are narrow (the leaderboard's: FULL_NAMES)."""


def load_results(metrics_dir: Path, fix: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Every metrics file by name (None: an optional one is missing), and ``errors`` (``analyse_errors``).
    ``fix(stage)`` says how to write again a damaged file that ``stage`` writes."""
    def read(name: str) -> Any:
        return read_json(metrics_dir / f"{name}.json", expect=list if name in LISTS else dict,
                         fix=fix(WRITTEN_BY[name]) if fix else None)

    results = {name: read(name) for name in REQUIRED}
    results |= {name: read(name) if (metrics_dir / f"{name}.json").exists() else None for name in OPTIONAL}
    results["errors"] = analyse_errors(results)
    return results


def shorten(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def prompt_rows(zeroshot: dict) -> list[tuple[str, str, dict]]:
    """(kind, label, metrics) of every template and ensemble, best top-1 first."""
    rows = [("template", t["template"], t) for t in zeroshot["templates"].values()]
    rows += [("ensemble", f"{key} ({e['num_templates'] or 'per-class'} prompts)", e)
             for key, e in (zeroshot.get("ensembles") or {}).items()]
    return sorted(rows, key=lambda row: -row[2]["top1"])


def chosen_label(zeroshot: dict) -> str:
    """The ``prompt_rows`` label of the zero-shot classifier chosen on train images."""
    return next(label for kind, label, result in prompt_rows(zeroshot)
                if result is zeroshot_result(zeroshot, zeroshot["best"]))


def held_out_classes(m: dict) -> set[str]:
    """The demo's classes held out of pretraining (none without heldout.json)."""
    return set(m["heldout"]["held_out_classes"]) if m["heldout"] else set()


def analyse_errors(m: dict) -> dict | None:
    """Confusion matrices, most confused pairs and per-class accuracy from the confusion files."""
    rows = {key: m[f"confusion_{key}"] for key in CLASSIFIERS if m[f"confusion_{key}"]}
    if not rows:
        return None
    names = sorted({r[side] for data in rows.values() for r in data for side in ("actual", "predicted")})
    index = {name: i for i, name in enumerate(names)}
    arrays = {key: (np.array([index[r["actual"]] for r in data]), np.array([index[r["predicted"]] for r in data]))
              for key, data in rows.items()}
    accuracy = {key: per_class_accuracy(*a, len(names)) for key, a in arrays.items()}
    per_class = [{"class": name, **{key: round(float(accuracy[key][index[name]]), 6) if key in accuracy else None
                                    for key in CLASSIFIERS}}
                 for name in sorted({r["actual"] for data in rows.values() for r in data})]
    ranked = sorted(per_class, key=lambda r: (1 if r["zeroshot"] is None else r["zeroshot"], r["class"]))
    return {"names": names, "per_class": per_class, "worst": ranked[:15],
            "pairs": {key: most_confused_pairs(*a, names) for key, a in arrays.items()},
            "matrices": {key: confusion_matrix(*a, len(names)) for key, a in arrays.items()}}
