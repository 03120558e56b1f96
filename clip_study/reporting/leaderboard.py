"""Models side by side: one row per model from its metrics files, paired tests between models on the same
test images, and the study's front page (the leaderboard, what differs, links to each model's report)."""

from __future__ import annotations

from typing import Any

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.intervals import compared
from clip_study.evaluation.metrics import chosen_key
from clip_study.models.families import FAMILIES
from clip_study.reporting.summary import CLASSIFIERS, interval_text, with_interval, zeroshot_result

FEWSHOT_K = "16"  # the few-shot column: the CLIP paper's 16 images per class
FULL_NAMES = dict(zip(CLASSIFIERS, ("zero-shot", "linear probe", "logistic probe")))
"""Each classifier's name on the front page, which sets models side by side (a model's report: SHORT_NAMES)."""


def model_row(short: str, extract: dict, zeroshot: dict, probe: dict, logreg: dict, fewshot: dict) -> dict[str, Any]:
    """One model's leaderboard entry from its stages' metrics files (numbers, plus what they are)."""
    templates = zeroshot["templates"]
    template = chosen_key(templates)  # among templates only, chosen on the train images as zeroshot chooses
    fewshot_point = next((row for row in fewshot["curve"] if row["label"] == FEWSHOT_K), None)
    return {
        "model": short, "checkpoint": extract["checkpoint"], "family": extract["family"],
        "parameters": extract["parameters"], "images_per_second": extract["images_per_second"],
        "device": extract["device"],
        "zeroshot_template": {"key": template, "template": templates[template]["template"],
                              **with_interval(templates[template])},
        "zeroshot_ensembles": {key: with_interval(result) for key, result in (zeroshot.get("ensembles") or {}).items()},
        "zeroshot": {"key": zeroshot["best"], **with_interval(zeroshot_result(zeroshot, zeroshot["best"]))},
        "probe": with_interval(probe), "logreg": with_interval(logreg),
        f"fewshot_{FEWSHOT_K}": with_interval(fewshot_point, "mean_top1") if fewshot_point else None,
        "zeroshot_ece": zeroshot["calibration"]["before"]["ece"],
    }


def paired_between_models(predictions: dict[str, dict[str, np.ndarray]], leader: str) -> dict[str, dict]:
    """Each model against ``leader``, classifier by classifier (McNemar on the same test images)."""
    labels = predictions[leader]["labels"]
    for short, arrays in predictions.items():
        if not np.array_equal(arrays["labels"], labels):
            raise UserError(f"models {short} and {leader} were scored on different test images: rerun "
                            f"`dvc repro` so that every model's stages read the same data/subset")
    return {short: {key: compared(arrays[key] == labels, predictions[leader][key] == labels)
                    for key in CLASSIFIERS}
            for short, arrays in predictions.items() if short != leader}


def build_leaderboard(rows: list[dict], predictions: dict[str, dict[str, np.ndarray]], num_classes: int) -> dict:
    """The leaderboard: rows in the params' order, the leader (best zero-shot top-1, the classifier each model
    chose on its train images) and every other model compared with it."""
    leader = max(rows, key=lambda row: row["zeroshot"]["top1"])["model"]
    return {"num_classes": num_classes, "num_test_images": int(len(predictions[leader]["labels"])),
            "leader": leader, "models": rows, "vs_leader": paired_between_models(predictions, leader)}


def _objective(family: str) -> str:
    return f"{family}, {FAMILIES[family].objective}" if family in FAMILIES else family


def what_differs(board: dict) -> list[str]:
    """One sentence per model against the leader, from the measured numbers."""
    rows = {row["model"]: row for row in board["models"]}
    lead = rows[board["leader"]]
    sentences = []
    for short, tests in board["vs_leader"].items():
        row = rows[short]
        objectives = (f" ({_objective(row['family'])} against {_objective(lead['family'])})"
                      if row["family"] != lead["family"] else "")
        parts = [f"{name} {row[key]['top1']:.3f} against {lead[key]['top1']:.3f} ({tests[key]['verdict']})"
                 for key, name in FULL_NAMES.items()]
        sentences.append(
            f"**{short}** against the leader **{lead['model']}**{objectives}: " + "; ".join(parts)
            + f". Zero-shot calibration before temperature scaling: ECE {row['zeroshot_ece']:.3f} against "
              f"{lead['zeroshot_ece']:.3f}.")
    return sentences


def _parameters(count: int) -> str:
    return f"{count / 1e6:.1f} M" if count >= 1e5 else f"{count / 1e3:.0f} k"


def leaderboard_report(board: dict, figure: str | None, reports: dict[str, str]) -> str:
    """The study's front page in markdown: ``figure`` (a relative path) and each model's report link."""
    rows = sorted(board["models"], key=lambda row: -row["zeroshot"]["top1"])
    ensembles = list(dict.fromkeys(key for row in rows for key in row["zeroshot_ensembles"]))
    header = ["model", "checkpoint", "family", "zero-shot, chosen [interval]", "best template",
              *(f"ensemble {key}" for key in ensembles), "linear probe", "logistic probe",
              f"few-shot, {FEWSHOT_K} per class", "images/s (this run)", "parameters"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        speed = row["images_per_second"]
        cells = [f"**{row['model']}**", f"`{row['checkpoint']}`", row["family"],
                 f"{interval_text(row['zeroshot'])} (`{row['zeroshot']['key']}`)",
                 f"{row['zeroshot_template']['top1']:.4f} (`{row['zeroshot_template']['template']}`)",
                 *(f"{row['zeroshot_ensembles'][key]['top1']:.4f}" if key in row["zeroshot_ensembles"] else "-"
                   for key in ensembles),
                 interval_text(row["probe"]), interval_text(row["logreg"]),
                 interval_text(row[f"fewshot_{FEWSHOT_K}"]) if row[f"fewshot_{FEWSHOT_K}"] else "-",
                 f"{speed:.0f} on {row['device']}" if speed else "- (resumed)", _parameters(row["parameters"])]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    out = [f"# CLIP study: {len(rows)} model{'s' if len(rows) > 1 else ''} side by side\n",
           f"{board['num_classes']} classes, {board['num_test_images']} test images, the same for every model. "
           "Zero-shot is each model's classifier chosen on its train images (\"best template\": the best single "
           "template, chosen the same way); intervals are percentile bootstraps over the test images; images/s "
           "is the image encoding measured when extract last ran.\n",
           "## Leaderboard\n", "\n".join(lines) + "\n"]
    if board["vs_leader"]:
        out += ["## Against the leader\n", f"McNemar's exact test against **{board['leader']}** on the same "
                "test images, classifier by classifier (5 % level).\n"]
        test_rows = [[short, *(tests[key]["verdict"] for key in CLASSIFIERS)]
                     for short, tests in board["vs_leader"].items()]
        out += ["| model | " + " | ".join(FULL_NAMES.values()) + " |",
                "|" + "---|" * (len(FULL_NAMES) + 1),
                *("| " + " | ".join(row) + " |" for row in test_rows), "",
                "## What differs\n", *(f"{sentence}\n" for sentence in what_differs(board))]
    if figure:
        out.append(f"![top-1 per model]({figure})\n")
    out += ["## Each model's report\n",
            *(f"- [{short}]({path}): every metric of `{row['checkpoint']}`"
              for row in board["models"] for short, path in [(row["model"], reports[row["model"]])]), ""]
    return "\n".join(out)
