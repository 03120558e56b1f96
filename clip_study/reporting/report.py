"""The study's report: every metrics file as one markdown document with its figures, readable offline
(GitHub or any markdown viewer; no JavaScript)."""

from __future__ import annotations

from clip_study.evaluation.metrics import overtaking_k
from clip_study.reporting.results import CLASSIFIERS, OPTIONAL, held_out_classes, prompt_rows

METRICS = (("top1", "top-1"), ("top5", "top-5"), ("macro_f1", "macro-F1"),
           ("mean_per_class_recall", "mean per-class recall"))


def fmt(value) -> str:
    """Every number of the report: 4 decimals (``-`` when not measured)."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]) + "\n"


def missing(name: str) -> str:
    return f"_Not measured: `{name}.json` is missing; the {OPTIONAL[name]} writes it._\n"


def build_report(m: dict, drawn: set[str], rel: str) -> str:
    """The markdown report from the loaded metrics (None: file missing) and the names of the figures drawn."""
    z, s, probe, lr, few, held, errors = (m[k] for k in ("zeroshot", "similarity", "probe", "logreg", "fewshot",
                                                         "heldout", "errors"))
    img = lambda name, alt: f"![{alt}]({rel}/{name}.png)\n" if name in drawn else ""  # noqa: E731
    scores = lambda r: [r.get(key) for key, _ in METRICS]  # noqa: E731
    cols = [label for _, label in METRICS]
    best = z["templates"][z["best"]]
    ens_key, ens = max((z.get("ensembles") or {}).items(), key=lambda kv: kv[1]["top1"], default=(None, None))
    zs_name, zs = (f"ensemble `{ens_key}`", ens) if ens and ens["top1"] > best["top1"] else ("best template", best)
    k = overtaking_k(few["curve"], z["best_top1"]) if few else None  # as the summary stage compares

    head = [[f"zero-shot, best template `{best['template']}`", *scores(best), 0]]
    head += [[f"zero-shot, best ensemble `{ens_key}`", *scores(ens), 0]] if ens else []
    head += [["zero-shot, raw dot product, same template", *scores(s["dot"]), 0],
             [f"linear probe (torch, {probe['epochs']} epochs)", *scores({**m["probe_curve"][-1], **probe}),
              probe["num_train_images"]]]
    head += [[f"logistic-regression probe (C = {lr['C']:.4g})", *scores(lr), lr["num_train_images"]]] if lr else []
    out = ["# CLIP study report\n",
           f"{z['num_classes']} classes, {z['num_test_images']} test images (the same for every classifier); "
           f"chance top-1 = 1/{z['num_classes']} = {z['chance_top1']:.4f}.\n",
           "## 1. Headline\n", table(["classifier", *cols, "labelled images"], head), not lr and missing("logreg")]

    out += ["## 2. Prompts\n", img("prompts", "zero-shot top-1 per prompt"),
            table(["kind", "prompt", *cols], [[kind, f"`{label}`", *scores(r)] for kind, label, r in prompt_rows(z)]),
            not ens and "_No prompt ensembles in `zeroshot.json`: the zeroshot stage adds those its params name._\n"]

    text, image = s["text_norms"], s["image_norms"]
    out += ["## 3. Cosine vs dot product\n", img("similarity", "cosine vs dot product and embedding norms"),
            table(["similarity", *cols, "classes predicted"],
                  [[key, *scores(s[key]), s[key].get("predicted_classes")] for key in ("cosine", "dot")]),
            f"With `{s['template']}`, cosine scores {s['cosine']['top1'] - s['dot']['top1']:+.4f} top-1 against the "
            "raw dot product. Scaling an image embedding never changes how it ranks the classes, so the image norms "
            f"({image['min']:.4f}-{image['max']:.4f}) play no part; the difference comes from the class text norms "
            f"({text['min']:.4f}-{text['max']:.4f}, std {text['std']:.4f}): under the dot product, classes with "
            "longer text vectors win more often. Correlation between a class's text norm and how often the dot "
            f"product predicts it: {s['dot_predictions_vs_text_norm_corr']:.4f}.\n"]

    out += ["## 4. Linear probe\n", img("probe_curve", "probe learning curve"),
            f"Torch probe (the study's protocol: Adam, {probe['epochs']} epochs): final top-1 {fmt(probe['top1'])}; "
            f"best {fmt(probe['best_top1'])} at epoch {probe['best_epoch']}, optimistic (picked on the test set).\n"]
    out += [img("logreg_sweep", "logreg C sweep"),
            f"Logistic regression (the CLIP paper's protocol): C swept over {len(m['logreg_sweep'])} values on a "
            f"validation split, chosen C = {lr['C']:.4g} (validation top-1 {fmt(lr['val_top1'])}), refit on all "
            f"{lr['num_train_images']} training images: test top-1 {fmt(lr['top1'])}.\n"
            ] if lr and m["logreg_sweep"] else [missing("logreg_sweep" if lr else "logreg")]

    out.append("## 5. Few-shot\n")
    out += [img("fewshot", "few-shot curve"),
            table(["k", "runs", "mean top-1", "std", "min", "max"],
                  [[f"all ({c['k']})" if c["label"] == "all" else c["label"], c["runs"],
                    *(c[f"{stat}_top1"] for stat in ("mean", "std", "min", "max"))] for c in few["curve"]]),
            f"Zero-shot (best template `{best['template']}`) scores {fmt(best['top1'])}: "
            + (f"the probe overtakes zero-shot at k = {k} labelled images per class ({k * few['num_classes']} "
               "labelled images in all).\n" if k is not None else
               f"the probe does not overtake zero-shot at any k measured (up to k = {few['curve'][-1]['k']}).\n")
            ] if few else [missing("fewshot")]

    out += ["## 6. Errors\n"] + [missing(f"confusion_{key}") for key, _ in CLASSIFIERS if not m[f"confusion_{key}"]]
    for key, label in CLASSIFIERS[:2] if errors else ():
        if key in errors["pairs"]:
            pairs = [[p["actual"], p["predicted"], p["count"]] for p in errors["pairs"][key]]
            out.append(f"Most confused pairs, {label}:\n\n" + (table(["actual", "predicted as", "images"], pairs)
                                                               if pairs else "none: every test image is right.\n"))
    if errors and "zeroshot" in errors["pairs"]:
        out += [img("confusion", "zero-shot confusion matrix"), img("per_class", "worst classes"),
                f"Per-class accuracy of the {len(errors['worst'])} worst classes of zero-shot (all classes in "
                "`per_class.json`; the class list is the sorted union of the names in the confusion files):\n\n"
                + table(["class", *(label for _, label in CLASSIFIERS)],
                        [[r["class"] + (" (held out)" if r["class"] in held_out_classes(m) else ""),
                          *(r[key] for key, _ in CLASSIFIERS)] for r in errors["worst"]])]

    out.append("## 7. Held-out combinations\n")
    out += [f"Zero-shot top-1 on the classes seen in pretraining and on the {len(held['held_out_classes'])} held "
            f"out of it ({', '.join(held['held_out_classes'])}); chance {held['chance_top1']:.4f}.\n",
            table(["prompt", "seen top-1", "held-out top-1"],
                  [[f"`{t['template']}`", t["seen_top1"], t["held_out_top1"]] for t in held["templates"].values()]
                  + [[f"best template, {key}", held[key]["seen_top1"], held[key]["held_out_top1"]]
                     for key in ("cosine", "dot")])] if held else [missing("heldout")]

    out += ["## 8. Zero-shot or probe?\n",
            f"- **Labelled data**: zero-shot none; the full probe {probe['num_train_images']} images "
            f"({probe['num_train_images'] // z['num_classes']} per class)"
            + (f"; the few-shot probe overtakes zero-shot (best template) from k = {k} per class "
               f"({k * z['num_classes']} images)" if k else "") + ".",
            f"- **Accuracy** (top-1): zero-shot {fmt(zs['top1'])} ({zs_name}); torch probe {fmt(probe['top1'])} "
            f"({probe['top1'] - zs['top1']:+.4f})"
            + (f"; logreg probe {fmt(lr['top1'])} ({lr['top1'] - zs['top1']:+.4f})" if lr else "") + ".",
            f"- **Flexibility**: zero-shot classified these {z['num_classes']} classes from their names alone and "
            "takes a new class by its name; a probe needs labelled images of every new class and a new training run.",
            f"- **Cost**: zero-shot encodes {z['num_classes']} classes x "
            f"{(ens['num_templates'] or 'per-class') if zs is ens else 1} prompt(s) once; the torch probe trains "
            f"{probe['epochs']} epochs over {probe['num_train_images']} cached image features"
            + (f", the logreg probe makes {len(m['logreg_sweep'])} sweep fits and a refit" if lr and m["logreg_sweep"]
               else "") + "; the metrics files record no wall times.\n"]
    return "\n".join(part for part in out if part)
