"""The study's report: every metrics file as one markdown document with its figures, readable offline
(GitHub or any markdown viewer; no JavaScript)."""

from __future__ import annotations

from clip_study.evaluation.metrics import overtaking_k
from clip_study.reporting.results import OPTIONAL, SHORT_NAMES, chosen_label, held_out_classes, prompt_rows
from clip_study.reporting.summary import zeroshot_result

METRICS = (("top1", "top-1"), ("top5", "top-5"), ("macro_f1", "macro-F1"),
           ("mean_per_class_recall", "mean per-class recall"))


def fmt(value) -> str:
    """Every number of the report: 4 decimals (``-`` when not measured)."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]) + "\n"


def not_measured(name: str) -> str:
    """The line in place of a section whose metrics file is missing, naming the stage that writes it."""
    return f"_Not measured: `{name}.json` is missing; the {OPTIONAL[name]} writes it._\n"


def interval(result: dict, point: str = "top1", name: str = "top1") -> str:
    """'0.9204 [0.9031, 0.9367]': a score with its bootstrap interval."""
    return f"{result[point]:.4f} [{result[f'{name}_low']:.4f}, {result[f'{name}_high']:.4f}]"


def verdict_of(test: dict | None) -> str:
    return test["verdict"] if test else "-"


def build_report(m: dict, drawn: set[str], rel: str) -> str:
    """The markdown report from the loaded metrics (None: file missing) and the names of the figures drawn."""
    z, s, probe, lr, few, held, errors = (m[k] for k in ("zeroshot", "similarity", "probe", "logreg", "fewshot",
                                                         "heldout", "errors"))
    paired, zsinit = m["paired"] or {}, m["zsinit"]
    img = lambda name, alt: f"![{alt}]({rel}/{name}.png)\n" if name in drawn else ""  # noqa: E731
    row = lambda r: [interval(r), r.get("top5"), interval(r, "macro_f1", "macro_f1"),  # noqa: E731
                     r.get("mean_per_class_recall")]
    cols = ["top-1 [interval]", "top-5", "macro-F1 [interval]", "mean per-class recall"]
    best, oracle = zeroshot_result(z, z["best"]), zeroshot_result(z, z["oracle"])
    k = overtaking_k(few["curve"], z["best_top1"]) if few else None  # as the summary stage compares
    coverage = f"{z['interval']['confidence']:.0%}"

    head = [[f"zero-shot `{chosen_label(z)}`, chosen on {z['chosen_on']}", *row(best), "-", 0]]
    head += [[f"zero-shot oracle `{z['oracle']}` (picked on test: optimistic)", *row(oracle), "-", 0]
             ] if z["oracle"] != z["best"] else []
    head += [["zero-shot, raw dot product, same classifier", *row(s["dot"]), s["dot"]["vs_cosine"]["verdict"]
              + " (vs cosine)", 0],
             [f"linear probe (torch), epoch {probe['chosen_epoch']} chosen on {probe['chosen_on']}", *row(probe),
              verdict_of(paired.get("probe_vs_zeroshot")), probe["num_train_images"]],
             [f"linear probe, final epoch {probe['final']['epoch']} (the study's fixed budget)", *row(probe["final"]),
              "-", probe["num_train_images"]]]
    head += [[f"logistic-regression probe (C = {lr['C']:.4g})", *row(lr),
              verdict_of(paired.get("logreg_vs_zeroshot")), lr["num_train_images"]]] if lr else []
    out = [f"# CLIP study report{': ' + z['model'] if z.get('model') else ''}\n",
           f"{z['num_classes']} classes, {z['num_test_images']} test images (the same for every classifier); "
           f"chance top-1 = 1/{z['num_classes']} = {z['chance_top1']:.4f}. Intervals: {coverage} percentile "
           f"bootstrap over the test images ({z['interval']['resamples']} resamples, stratified by class). "
           "Verdicts: McNemar's exact test on the same test images, against zero-shot (5 % level).\n",
           "## 1. Headline\n", table(["classifier", *cols, "vs zero-shot (McNemar)", "labelled images"], head),
           not lr and not_measured("logreg"), not m["paired"] and not_measured("paired")]

    out += ["## 2. Prompts\n", img("prompts", "zero-shot top-1 per prompt"),
            f"The classifier is chosen by its top-1 on the {z['chosen_on']} (zero-shot never learns from them); "
            "each is compared with the chosen one on the test images.\n",
            table(["kind", "prompt", *cols, "train-image top-1", "vs chosen (McNemar)"],
                  [[kind, f"`{label}`", *row(r), r["choice_top1"], verdict_of(r["vs_chosen"]) if r["vs_chosen"]
                    else "chosen"] for kind, label, r in prompt_rows(z)]),
            not z.get("ensembles") and "_No prompt ensembles in `zeroshot.json`: the zeroshot stage adds those its "
                                       "params name._\n"]

    text, image = s["text_norms"], s["image_norms"]
    out += ["## 3. Cosine vs dot product\n", img("similarity", "cosine vs dot product and embedding norms"),
            table(["similarity", *cols, "classes predicted"],
                  [[key, *row(s[key]), s[key].get("predicted_classes")] for key in ("cosine", "dot")]),
            f"With `{s['template']}`, cosine scores {s['cosine']['top1'] - s['dot']['top1']:+.4f} top-1 against the "
            f"raw dot product; the dot product is {s['dot']['vs_cosine']['verdict']} against cosine. Scaling an image "
            "embedding never changes how it ranks the classes, so the image norms "
            f"({image['min']:.4f}-{image['max']:.4f}) play no part; the difference comes from the class text norms "
            f"({text['min']:.4f}-{text['max']:.4f}, std {text['std']:.4f}): under the dot product, classes with "
            "longer text vectors win more often. Correlation between a class's text norm and how often the dot "
            f"product predicts it: {s['dot_predictions_vs_text_norm_corr']:.4f}.\n"]

    out += ["## 4. Linear probe\n", img("probe_curve", "probe learning curve"),
            f"Torch probe (the study's protocol: Adam, {probe['epochs']} epochs). Epoch {probe['chosen_epoch']} is "
            f"chosen on {probe['chosen_on']} by a run that trained without them; the run on all training images "
            f"scores {interval(probe)} there. Final epoch: {interval(probe['final'])}. The best test epoch, "
            f"{probe['oracle_epoch']} ({fmt(probe['oracle_top1'])}), is an oracle: picked on the test set.\n"]
    out += [img("logreg_sweep", "logreg C sweep"),
            f"Logistic regression (the CLIP paper's protocol): C swept over {len(m['logreg_sweep'])} values on a "
            f"validation split, chosen C = {lr['C']:.4g} (validation top-1 {fmt(lr['val_top1'])}), refit on all "
            f"{lr['num_train_images']} training images: test top-1 {interval(lr)}.\n"
            ] if lr and m["logreg_sweep"] else [not_measured("logreg_sweep" if lr else "logreg")]

    out.append("## 5. Few-shot\n")
    few_rows = [[f"all ({c['k']})" if c["label"] == "all" else c["label"], "logistic probe", c["runs"],
                 interval(c, "mean_top1"), *(c[f"{stat}_top1"] for stat in ("std", "min", "max"))]
                for c in few["curve"]] if few else []
    few_rows += [[f"all ({c['k']})" if c["label"] == "all" else c["label"], name, c["runs"],
                  interval(c[part], "mean_top1"), *(c[part][f"{stat}_top1"] for stat in ("std", "min", "max"))]
                 for c in zsinit["curve"] for part, name in (
                     ("init", "zero-shot-initialised head"),
                     ("mix", f"its mix with zero-shot (mean alpha {c['mix']['mean_alpha']:.2f})"))] if zsinit else []
    out += [img("fewshot", "few-shot curve"),
            table(["k", "probe", "runs", "mean top-1 [interval]", "std", "min", "max"], few_rows),
            f"Zero-shot (`{chosen_label(z)}`) scores {interval(best)}: "
            + (f"the probe overtakes zero-shot at k = {k} labelled images per class ({k * few['num_classes']} "
               "labelled images in all).\n" if k is not None else
               f"the probe does not overtake zero-shot at any k measured (up to k = {few['curve'][-1]['k']}).\n")
            + ("The zero-shot-initialised probe starts from the class text embeddings and is mixed with zero-shot "
               "by a weight chosen on validation.\n" if zsinit else "")
            ] if few else [not_measured("fewshot")]

    out += ["## 6. Calibration\n", img("reliability", "reliability diagrams"),
            "Probabilities: zero-shot's softmax over the classes of the model's logits (logit scale x cosine; a "
            "SigLIP bias cancels), each probe's softmax of its scores. The temperature is fitted on held-out data "
            "(zero-shot: the train images; the probes: their validation split), never on test; "
            f"ECE over {z['calibration']['bins']} confidence bins.\n",
            table(["classifier", "temperature", "ECE", "ECE scaled", "NLL", "NLL scaled", "Brier", "Brier scaled"],
                  [[name, c["temperature"], c["before"]["ece"], c["after"]["ece"], c["before"]["nll"],
                    c["after"]["nll"], c["before"]["brier"], c["after"]["brier"]]
                   for name, c in (("zero-shot", z["calibration"]), ("probe", probe["calibration"]),
                                   ("logreg probe", lr["calibration"] if lr else None)) if c])]

    out += ["## 7. Errors\n"] + [not_measured(f"confusion_{key}") for key in SHORT_NAMES
                                  if not m[f"confusion_{key}"]]
    for key, label in list(SHORT_NAMES.items())[:2] if errors else ():
        if key in errors["pairs"]:
            pairs = [[p["actual"], p["predicted"], p["count"]] for p in errors["pairs"][key]]
            out.append(f"Most confused pairs, {label}:\n\n" + (table(["actual", "predicted as", "images"], pairs)
                                                               if pairs else "none: every test image is right.\n"))
    if errors and "zeroshot" in errors["pairs"]:
        out += [img("confusion", "zero-shot confusion matrix"), img("per_class", "worst classes"),
                f"Per-class accuracy of the {len(errors['worst'])} worst classes of zero-shot (all classes in "
                "`per_class.json`; the class list is the sorted union of the names in the confusion files):\n\n"
                + table(["class", *SHORT_NAMES.values()],
                        [[r["class"] + (" (held out)" if r["class"] in held_out_classes(m) else ""),
                          *(r[key] for key in SHORT_NAMES)] for r in errors["worst"]])]

    out.append("## 8. Held-out combinations\n")
    out += [f"Zero-shot top-1 on the classes seen in pretraining and on the {len(held['held_out_classes'])} held "
            f"out of it ({', '.join(held['held_out_classes'])}); chance {held['chance_top1']:.4f}.\n",
            table(["prompt", "seen top-1", "held-out top-1"],
                  [[f"`{t['template']}`", t["seen_top1"], t["held_out_top1"]] for t in held["templates"].values()]
                  + [[f"best template, {key}", held[key]["seen_top1"], held[key]["held_out_top1"]]
                     for key in ("cosine", "dot")])] if held else [not_measured("heldout")]

    out += ["## 9. Zero-shot or probe?\n",
            f"- **Labelled data**: zero-shot none; the full probe {probe['num_train_images']} images "
            f"({probe['num_train_images'] // z['num_classes']} per class)"
            + (f"; the few-shot probe overtakes zero-shot from k = {k} per class "
               f"({k * z['num_classes']} images)" if k else "") + ".",
            f"- **Accuracy** (top-1): zero-shot {interval(best)} (`{chosen_label(z)}`); torch probe {interval(probe)} "
            f"({probe['top1'] - best['top1']:+.4f}, {verdict_of(paired.get('probe_vs_zeroshot'))})"
            + (f"; logreg probe {interval(lr)} ({lr['top1'] - best['top1']:+.4f}, "
               f"{verdict_of(paired.get('logreg_vs_zeroshot'))})" if lr else "") + ".",
            f"- **Flexibility**: zero-shot classified these {z['num_classes']} classes from their names alone and "
            "takes a new class by its name; a probe needs labelled images of every new class and a new training run.",
            f"- **Cost**: zero-shot encodes {z['num_classes']} classes x "
            f"{best.get('num_templates') or ('per-class' if 'source' in best else 1)} prompt(s) once; the torch probe "
            "trains "
            f"{probe['epochs']} epochs twice (choosing the epoch, then on all images) over {probe['num_train_images']} "
            "cached image features"
            + (f", the logreg probe makes {len(m['logreg_sweep'])} sweep fits and a refit" if lr and m["logreg_sweep"]
               else "") + "; the metrics files record no wall times.\n"]
    return "\n".join(part for part in out if part)
