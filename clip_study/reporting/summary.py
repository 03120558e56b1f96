"""The study's bottom line: zero-shot against the linear probes, and where the few-shot probe overtakes
zero-shot. As a dict of numbers only (the one DVC metrics file of a pipeline, what ``dvc exp show`` and
``dvc metrics diff`` compare) and as a markdown table with the prompt and the labelled data each needs."""

from __future__ import annotations

from typing import Any

from clip_study.evaluation.metrics import overtaking_k


def build_summary(zeroshot: dict, similarity: dict, probe: dict, logreg: dict, fewshot: dict,
                  heldout: dict | None = None) -> dict[str, Any]:
    """The numbers a user compares across experiments, from the zeroshot, similarity, probe, logreg,
    fewshot and (demo) heldout stages' files; counts and texts stay in those files. Every number is test
    top-1 unless its key says otherwise, and keys are short: they are the columns of ``dvc exp show``."""
    best = zeroshot["templates"][zeroshot["best"]]
    prompts = {key: result["top1"] for key, result in zeroshot["templates"].items()}
    prompts |= {name: result["top1"] for name, result in (zeroshot.get("ensembles") or {}).items()}
    summary = {
        "zeroshot": prompts, "zeroshot_best": best["top1"], "dot_product": similarity["dot"]["top1"],
        "probe": probe["top1"], "logreg": logreg["top1"],
        "fewshot": {row["label"]: row["mean_top1"] for row in fewshot["curve"]},
        "macro_f1": {"zeroshot_best": best["macro_f1"], "dot_product": similarity["dot"]["macro_f1"],
                     "probe": probe["macro_f1"], "logreg": logreg["macro_f1"]},
        "probe_best": probe["best_top1"], "probe_best_epoch": probe["best_epoch"], "logreg_C": logreg["C"],
        "probe_minus_zeroshot": round(probe["top1"] - best["top1"], 6),
        "fewshot_overtakes_at_k": overtaking_k(fewshot["curve"], best["top1"]),
    }
    if heldout is not None:  # the demo: the best template on classes seen in pretraining and held out of it
        best_template = heldout["cosine"]
        summary["heldout"] = {"seen": best_template["seen_top1"], "held_out": best_template["held_out_top1"]}
    return summary


def summary_table(summary: dict, zeroshot: dict, similarity: dict, probe: dict, logreg: dict) -> str:
    """The markdown table of ``summary`` with the prompt, top-5 and the labelled data each classifier needs
    (read from the stages' files)."""
    best, dot = zeroshot["templates"][zeroshot["best"]], similarity["dot"]
    template, labelled = f"`{zeroshot['best_template']}`", "none (class names only)"
    rows = [
        ("zero-shot, cosine", template, best["top1"], best["top5"], best["macro_f1"], labelled),
        ("zero-shot, dot product", template, dot["top1"], dot["top5"], dot["macro_f1"], labelled),
        (f"linear probe, epoch {probe['epochs']}", "-", probe["top1"], probe["top5"], probe["macro_f1"],
         f"{probe['num_train_images']} labelled images"),
        (f"linear probe, best epoch ({probe['best_epoch']})", "-", probe["best_top1"], "", probe["best_macro_f1"],
         f"{probe['num_train_images']} labelled images"),
        (f"logistic regression, C={logreg['C']:.3g}", "-", logreg["top1"], logreg["top5"], logreg["macro_f1"],
         f"{logreg['num_train_images']} labelled images"),
    ]
    k = summary["fewshot_overtakes_at_k"]
    lines = ["# CLIP study summary\n",
             f"{zeroshot['num_classes']} classes (chance top-1 {1 / zeroshot['num_classes']:.4f}), "
             f"{zeroshot['num_test_images']} test images.\n",
             "| classifier | prompt | top-1 | top-5 | macro-F1 | labelled data needed |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in rows]
    lines.append(f"\nThe probe is {summary['probe_minus_zeroshot']:+.4f} top-1 from zero-shot. "
                 + (f"The few-shot logistic probe overtakes zero-shot at {k} labelled images per class.\n" if k
                    else "The few-shot logistic probe never overtakes zero-shot.\n"))
    return "\n".join(lines)
