"""The study's bottom line: zero-shot (best template) against the linear probes, with the labelled data
each needs, and where the few-shot probe overtakes zero-shot; as a dict and as a markdown table."""

from __future__ import annotations

from typing import Any

from clip_study.evaluation.metrics import overtaking_k


def build_summary(zeroshot: dict, similarity: dict, probe: dict, logreg: dict, fewshot: dict) -> dict[str, Any]:
    """The summary from the metrics of the zeroshot, similarity, probe, logreg and fewshot stages."""
    best = zeroshot["templates"][zeroshot["best"]]
    return {
        "num_classes": zeroshot["num_classes"], "num_test_images": zeroshot["num_test_images"],
        "zeroshot": {"template": best["template"], "top1": best["top1"], "top5": best["top5"],
                     "macro_f1": best["macro_f1"], "labelled_images": 0},
        "similarity": {f"dot_{k}": similarity["dot"][k] for k in ("top1", "top5", "macro_f1")},
        "probe": {"top1": probe["top1"], "top5": probe["top5"], "macro_f1": probe["macro_f1"],
                  "epochs": probe["epochs"], "best_epoch": probe["best_epoch"], "best_top1": probe["best_top1"],
                  "best_macro_f1": probe["best_macro_f1"], "labelled_images": probe["num_train_images"]},
        "logreg": {"C": logreg["C"], "top1": logreg["top1"], "top5": logreg["top5"], "macro_f1": logreg["macro_f1"],
                   "labelled_images": logreg["num_train_images"]},
        "probe_minus_zeroshot_top1": round(probe["top1"] - best["top1"], 6),
        "fewshot_overtakes_zeroshot_at_k": overtaking_k(fewshot["curve"], best["top1"]),
    }


def summary_table(summary: dict) -> str:
    """The markdown table of ``summary`` (the JSON written beside it)."""
    zeroshot, probe, similarity, logreg = summary["zeroshot"], summary["probe"], summary["similarity"], summary["logreg"]
    rows = [
        ("zero-shot, cosine", f"`{zeroshot['template']}`", zeroshot["top1"], zeroshot["top5"],
         zeroshot["macro_f1"], "none (class names only)"),
        ("zero-shot, dot product", f"`{zeroshot['template']}`", similarity["dot_top1"], similarity["dot_top5"],
         similarity["dot_macro_f1"], "none (class names only)"),
        (f"linear probe, epoch {probe['epochs']}", "-", probe["top1"], probe["top5"], probe["macro_f1"],
         f"{probe['labelled_images']} labelled images"),
        (f"linear probe, best epoch ({probe['best_epoch']})", "-", probe["best_top1"], "", probe["best_macro_f1"],
         f"{probe['labelled_images']} labelled images"),
        (f"logistic regression, C={logreg['C']:.3g}", "-", logreg["top1"], logreg["top5"], logreg["macro_f1"],
         f"{logreg['labelled_images']} labelled images"),
    ]
    k = summary["fewshot_overtakes_zeroshot_at_k"]
    lines = ["# CLIP study summary\n",
             f"{summary['num_classes']} classes (chance top-1 {1 / summary['num_classes']:.4f}), "
             f"{summary['num_test_images']} test images.\n",
             "| classifier | prompt | top-1 | top-5 | macro-F1 | labelled data needed |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in rows]
    lines.append(f"\nThe probe is {summary['probe_minus_zeroshot_top1']:+.4f} top-1 from zero-shot. "
                 + (f"The few-shot logistic probe overtakes zero-shot at {k} labelled images per class.\n" if k
                    else "The few-shot logistic probe never overtakes zero-shot.\n"))
    return "\n".join(lines)
