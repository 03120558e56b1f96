"""The study's bottom line: zero-shot against the linear probes, each with its bootstrap interval, the paired
tests between them, calibration, and where the few-shot probe overtakes zero-shot. As a dict of numbers only
(the one DVC metrics file of a pipeline, what ``dvc exp show`` and ``dvc metrics diff`` compare: every top-1
sits beside its ``top1_low`` and ``top1_high``) and as a markdown table with the prompt and the labelled data
each needs."""

from __future__ import annotations

from typing import Any

import numpy as np

from clip_study.evaluation.intervals import compared
from clip_study.evaluation.metrics import overtaking_k

INTERVAL = ("top1", "top1_low", "top1_high")
CLASSIFIERS = ("zeroshot", "probe", "logreg")
"""The classifiers whose test predictions the summary stage keeps, by key: compared with each other on the same
test images, here and between models, each with a confusion file."""


def zeroshot_results(zeroshot: dict) -> dict[str, dict]:
    """Every zero-shot classifier's metrics by key: the templates', then the ensembles'."""
    return {**zeroshot["templates"], **(zeroshot.get("ensembles") or {})}


def zeroshot_result(zeroshot: dict, key: str) -> dict:
    """The metrics of zero-shot classifier ``key``: a template's or an ensemble's."""
    return zeroshot_results(zeroshot)[key]


def with_interval(result: dict, top1: str = "top1") -> dict[str, float]:
    """``{top1, top1_low, top1_high}`` of a result (``top1``: the key holding the point value)."""
    return {"top1": result[top1], "top1_low": result["top1_low"], "top1_high": result["top1_high"]}


def paired_tests(labels: np.ndarray, zeroshot: np.ndarray, probe: np.ndarray,
                 logreg: np.ndarray | None) -> dict[str, dict]:
    """Each probe against zero-shot on the same test images (McNemar), from their test predictions."""
    tests = {"probe_vs_zeroshot": compared(probe == labels, zeroshot == labels)}
    if logreg is not None:
        tests["logreg_vs_zeroshot"] = compared(logreg == labels, zeroshot == labels)
    return tests


def build_summary(zeroshot: dict, similarity: dict, probe: dict, logreg: dict, fewshot: dict, paired: dict,
                  heldout: dict | None = None, zsinit: dict | None = None) -> dict[str, Any]:
    """The numbers a user compares across experiments, from the stages' files; counts and texts stay in
    those files. Every number is test top-1 unless its key says otherwise, and keys are short: they are
    the columns of ``dvc exp show``. The zero-shot headline is the classifier chosen on train images, the
    probe's the epoch chosen on validation; ``*_oracle`` are the test-picked ones (optimistic)."""
    best = zeroshot_result(zeroshot, zeroshot["best"])
    results = zeroshot_results(zeroshot)
    summary = {
        "zeroshot": {key: with_interval(result) for key, result in results.items()},
        "zeroshot_best": with_interval(best), "zeroshot_oracle": zeroshot["oracle_top1"],
        "dot_product": with_interval(similarity["dot"]),
        "probe": with_interval(probe), "probe_epoch": probe["chosen_epoch"], "probe_final": probe["final"]["top1"],
        "probe_oracle": probe["oracle_top1"], "probe_oracle_epoch": probe["oracle_epoch"],
        "logreg": with_interval(logreg), "logreg_C": logreg["C"],
        "fewshot": {row["label"]: with_interval(row, "mean_top1") for row in fewshot["curve"]},
        "macro_f1": {"zeroshot_best": best["macro_f1"], "dot_product": similarity["dot"]["macro_f1"],
                     "probe": probe["macro_f1"], "logreg": logreg["macro_f1"]},
        "ece": {f"{name}{suffix}": stage["calibration"][when]["ece"]
                for name, stage in (("zeroshot", zeroshot), ("probe", probe), ("logreg", logreg))
                for suffix, when in (("", "before"), ("_scaled", "after"))},
        "p_value": {"dot_vs_cosine": similarity["dot"]["vs_cosine"]["p_value"],
                    **{name: test["p_value"] for name, test in paired.items()}},
        "probe_minus_zeroshot": round(probe["top1"] - best["top1"], 6),
        "fewshot_overtakes_at_k": overtaking_k(fewshot["curve"], best["top1"]),
    }
    if zsinit is not None:  # the zero-shot-initialised probe, mixed with zero-shot on validation
        summary["zsinit"] = {row["label"]: with_interval(row["mix"], "mean_top1") for row in zsinit["curve"]}
    if heldout is not None:  # the demo: the chosen classifier on classes seen in pretraining and held out of it
        chosen = heldout["cosine"]
        summary["heldout"] = {"seen": chosen["seen_top1"], "held_out": chosen["held_out_top1"]}
    return summary


def interval_text(result: dict, top1: str = "top1") -> str:
    return f"{result[top1]:.4f} [{result['top1_low']:.4f}, {result['top1_high']:.4f}]"


def summary_table(summary: dict, zeroshot: dict, similarity: dict, probe: dict, logreg: dict, paired: dict) -> str:
    """The markdown table of ``summary`` with intervals, the paired verdicts against zero-shot, and the labelled
    data each classifier needs (read from the stages' files)."""
    best, dot = zeroshot_result(zeroshot, zeroshot["best"]), similarity["dot"]
    labelled = "none (class names only)"
    chosen = f"`{zeroshot['best_template']}` (chosen on {zeroshot['chosen_on']})"
    images = f"{probe['num_train_images']} labelled images"
    rows = [
        ("zero-shot, cosine", chosen, interval_text(best), best["macro_f1"], "-", labelled),
        ("zero-shot, dot product", "same", interval_text(dot), dot["macro_f1"], dot["vs_cosine"]["verdict"]
         + " (vs cosine)", labelled),
        (f"linear probe, epoch {probe['chosen_epoch']} (chosen on {probe['chosen_on']})", "-", interval_text(probe),
         probe["macro_f1"], paired["probe_vs_zeroshot"]["verdict"], images),
        (f"logistic regression, C={logreg['C']:.3g}", "-", interval_text(logreg), logreg["macro_f1"],
         paired["logreg_vs_zeroshot"]["verdict"] if "logreg_vs_zeroshot" in paired else "-", images),
    ]
    k = summary["fewshot_overtakes_at_k"]
    confidence = f"{zeroshot['interval']['confidence']:.0%}"
    lines = ["# CLIP study summary\n",
             f"{zeroshot['num_classes']} classes (chance top-1 {1 / zeroshot['num_classes']:.4f}), "
             f"{zeroshot['num_test_images']} test images; top-1 with its {confidence} bootstrap interval.\n",
             "| classifier | prompt | top-1 [interval] | macro-F1 | vs zero-shot (McNemar) | labelled data needed |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in rows]
    lines.append(f"\nTest-picked (optimistic) oracles: zero-shot `{zeroshot['oracle']}` "
                 f"{zeroshot['oracle_top1']:.4f}, "
                 f"probe epoch {probe['oracle_epoch']} {probe['oracle_top1']:.4f}; the study's final epoch "
                 f"{probe['final']['epoch']}: {probe['final']['top1']:.4f}.")
    lines.append(f"The probe is {summary['probe_minus_zeroshot']:+.4f} top-1 from zero-shot. "
                 + (f"The few-shot logistic probe overtakes zero-shot at {k} labelled images per class.\n" if k
                    else "The few-shot logistic probe never overtakes zero-shot.\n"))
    return "\n".join(lines)
