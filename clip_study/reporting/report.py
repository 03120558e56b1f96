"""The study's report: every metrics file as one markdown document with its figures, readable offline
(GitHub or any markdown viewer; no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence

from clip_study.metrics_files.scores import PairedTest, Scores
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.reporting.findings import BUDGET_IN_WORDS, overtakes_at, overtaking_point, still_improving
from clip_study.reporting.results import (OPTIONAL, SHORT_NAMES, ModelResults, chosen_label, held_out_classes,
                                          prompt_rows)
from clip_study.reporting.text import interval_text, top1_text


def fmt(value) -> str:
    """Every number of the report: 4 decimals (``-`` when not measured)."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]) + "\n"


def not_measured(name: str) -> str:
    """The line in place of a section whose metrics file is missing, naming the stage that writes it."""
    return f"_Not measured: `{name}.json` is missing; the {OPTIONAL[name]} writes it._\n"


def score_cells(scores: Scores) -> list:
    """The report's four score columns: top-1 and macro-F1 with their intervals, top-5, mean per-class recall."""
    return [top1_text(scores), scores.top5, interval_text(scores.macro_f1, scores.macro_f1_low, scores.macro_f1_high),
            scores.mean_per_class_recall]


def verdict_of(test: PairedTest | None) -> str:
    return test.verdict if test else "-"


def prompt_count(zeroshot: ZeroshotMetrics) -> int | str:
    """The prompts the chosen zero-shot classifier encodes per class: 1 for a template, an ensemble's count."""
    ensemble = (zeroshot.ensembles or {}).get(zeroshot.best)
    return 1 if ensemble is None else ensemble.num_templates or "per-class"


def build_report(m: ModelResults, drawn: set[str], rel: str, probe_budget: Sequence[str] = BUDGET_IN_WORDS) -> str:
    """The markdown report from the loaded metrics (None: file missing) and the names of the figures drawn;
    ``probe_budget`` names what sets how far the probe trains, for when it stopped while still improving."""
    z, s, probe, lr, few, held, errors, paired, zsinit = (m.zeroshot, m.similarity, m.probe, m.logreg, m.fewshot,
                                                          m.heldout, m.errors, m.paired, m.zsinit)
    img = lambda name, alt: f"![{alt}]({rel}/{name}.png)\n" if name in drawn else ""  # noqa: E731
    cols = ["top-1 [interval]", "top-5", "macro-F1 [interval]", "mean per-class recall"]
    results = z.results()
    best, oracle = results[z.best], results[z.oracle]
    # as the summary stage compares
    overtaking = overtaking_point(few, z.best_top1) if few else None
    overtaken = overtakes_at(overtaking, few.num_classes, probe.num_train_images) if overtaking else None
    undertrained = still_improving(probe, z.best_top1, probe_budget)
    coverage = f"{z.interval.confidence:.0%}"
    probe_vs_zeroshot = paired.probe_vs_zeroshot if paired else None
    logreg_vs_zeroshot = paired.logreg_vs_zeroshot if paired else None

    head = [[f"zero-shot `{chosen_label(z)}`, chosen on {z.chosen_on}", *score_cells(best.test), "-", 0]]
    head += [[f"zero-shot oracle `{z.oracle}` (picked on test: optimistic)", *score_cells(oracle.test), "-", 0]
             ] if z.oracle != z.best else []
    head += [["zero-shot, raw dot product, same classifier", *score_cells(s.dot.test), s.dot.vs_cosine.verdict
              + " (vs cosine)", 0],
             [f"linear probe (torch), epoch {probe.chosen_epoch} chosen on {probe.chosen_on}",
              *score_cells(probe.test), verdict_of(probe_vs_zeroshot), probe.num_train_images],
             [f"linear probe, final epoch {probe.final.epoch} (the study's fixed budget)",
              *score_cells(probe.final.test), "-", probe.num_train_images]]
    head += [[f"logistic-regression probe (C = {lr.C:.4g})", *score_cells(lr.test), verdict_of(logreg_vs_zeroshot),
              lr.num_train_images]] if lr else []
    out = [f"# CLIP study report{': ' + z.model if z.model else ''}\n",
           f"{z.num_classes} classes, {z.num_test_images} test images (the same for every classifier); "
           f"chance top-1 = 1/{z.num_classes} = {z.chance_top1:.4f}. Intervals: {coverage} percentile "
           f"bootstrap over the test images ({z.interval.resamples} resamples, stratified by class). "
           "Verdicts: McNemar's exact test on the same test images, against zero-shot (5 % level).\n",
           "## 1. Headline\n", table(["classifier", *cols, "vs zero-shot (McNemar)", "labelled images"], head),
           not lr and not_measured("logreg"), not paired and not_measured("paired")]

    out += ["## 2. Prompts\n", img("prompts", "zero-shot top-1 per prompt"),
            f"The classifier is chosen by its top-1 on the {z.chosen_on} (zero-shot never learns from them); "
            "each is compared with the chosen one on the test images.\n",
            table(["kind", "prompt", *cols, "train-image top-1", "vs chosen (McNemar)"],
                  [[kind, f"`{label}`", *score_cells(r.test), r.choice_top1,
                    verdict_of(r.vs_chosen) if r.vs_chosen else "chosen"] for kind, label, r in prompt_rows(z)]),
            not z.ensembles and "_No prompt ensembles in `zeroshot.json`: the zeroshot stage adds those its "
                                "params name._\n"]

    text, image = s.text_norms, s.image_norms
    out += ["## 3. Cosine vs dot product\n", img("similarity", "cosine vs dot product and embedding norms"),
            table(["similarity", *cols, "classes predicted"],
                  [["cosine", *score_cells(s.cosine.test), s.cosine.predicted_classes],
                   ["dot", *score_cells(s.dot.test), s.dot.predicted_classes]]),
            f"With `{s.template}`, cosine scores {s.cosine.test.top1 - s.dot.test.top1:+.4f} top-1 against the "
            f"raw dot product; the dot product is {s.dot.vs_cosine.verdict} against cosine. Scaling an image "
            "embedding never changes how it ranks the classes, so the image norms "
            f"({image.min:.4f}-{image.max:.4f}) play no part; the difference comes from the class text norms "
            f"({text.min:.4f}-{text.max:.4f}, std {text.std:.4f}): under the dot product, classes with "
            "longer text vectors win more often. Correlation between a class's text norm and how often the dot "
            f"product predicts it: {s.dot_predictions_vs_text_norm_corr:.4f}.\n"]

    out += ["## 4. Linear probe\n", img("probe_curve", "probe learning curve"),
            f"Torch probe (the study's protocol: Adam, {probe.epochs} epochs). Epoch {probe.chosen_epoch} is "
            f"chosen on {probe.chosen_on} by a run that trained without them; the run on all training images "
            f"scores {top1_text(probe.test)} there. Final epoch: {top1_text(probe.final.test)}. The best test epoch, "
            f"{probe.oracle_epoch} ({fmt(probe.oracle_top1)}), is an oracle: picked on the test set."
            + (f" {undertrained}" if undertrained else "") + "\n"]
    out += [img("logreg_sweep", "logreg C sweep"),
            f"Logistic regression (the CLIP paper's protocol): C swept over {len(m.logreg_sweep)} values on a "
            f"validation split, chosen C = {lr.C:.4g} (validation top-1 {fmt(lr.val_top1)}), refit on all "
            f"{lr.num_train_images} training images: test top-1 {top1_text(lr.test)}.\n"
            ] if lr and m.logreg_sweep else [not_measured("logreg_sweep" if lr else "logreg")]

    out.append("## 5. Few-shot\n")
    few_rows = [[f"all ({c.shots.k})" if c.shots.label == "all" else c.shots.label, "logistic probe", c.shots.runs,
                 top1_text(c.test.mean_interval()), c.test.std_top1, c.test.min_top1, c.test.max_top1]
                for c in few.curve] if few else []
    few_rows += [[f"all ({c.shots.k})" if c.shots.label == "all" else c.shots.label, name, c.shots.runs,
                  top1_text(runs.mean_interval()), runs.std_top1, runs.min_top1, runs.max_top1]
                 for c in zsinit.curve for runs, name in (
                     (c.init, "zero-shot-initialised head"),
                     (c.mix, f"its mix with zero-shot (mean alpha {c.mix.mean_alpha:.2f})"))] if zsinit else []
    out += [img("fewshot", "few-shot curve"),
            table(["k", "probe", "runs", "mean top-1 [interval]", "std", "min", "max"], few_rows),
            f"Zero-shot (`{chosen_label(z)}`) scores {top1_text(best.test)}: "
            + (f"the probe overtakes zero-shot {overtaken}.\n" if overtaken else
               "the probe does not overtake zero-shot at any k measured, not even with all "
               f"{probe.num_train_images} labelled images.\n")
            + ("The zero-shot-initialised probe starts from the class text embeddings and is mixed with zero-shot "
               "by a weight chosen on validation.\n" if zsinit else "")
            ] if few else [not_measured("fewshot")]

    out += ["## 6. Calibration\n", img("reliability", "reliability diagrams"),
            "Probabilities: zero-shot's softmax over the classes of the model's logits (logit scale x cosine; a "
            "SigLIP bias cancels), each probe's softmax of its scores. The temperature is fitted on held-out data "
            "(zero-shot: the train images; the probes: their validation split), never on test; "
            f"ECE over {z.calibration.bins} confidence bins; under each reliability diagram, how many test images "
            "each bin holds.\n",
            table(["classifier", "temperature", "ECE", "ECE scaled", "NLL", "NLL scaled", "Brier", "Brier scaled"],
                  [[name, c.temperature, c.before.ece, c.after.ece, c.before.nll, c.after.nll, c.before.brier,
                    c.after.brier]
                   for name, c in (("zero-shot", z.calibration), ("probe", probe.calibration),
                                   ("logreg probe", lr.calibration if lr else None)) if c])]

    out += ["## 7. Errors\n"] + [not_measured(f"confusion_{key}") for key in SHORT_NAMES if not m.confusion[key]]
    for key, label in list(SHORT_NAMES.items())[:2] if errors else ():
        if key in errors.pairs:
            pairs = [[p["actual"], p["predicted"], p["count"]] for p in errors.pairs[key]]
            out.append(f"Most confused pairs, {label}:\n\n" + (table(["actual", "predicted as", "images"], pairs)
                                                               if pairs else "none: every test image is right.\n"))
    if errors and "zeroshot" in errors.pairs:
        out += [img("confusion", "zero-shot confusion matrix"), img("per_class", "worst classes"),
                f"Per-class accuracy of the {len(errors.worst)} worst classes of zero-shot (all classes in "
                "`per_class.json`; the class list is the sorted union of the names in the confusion files):\n\n"
                + table(["class", *SHORT_NAMES.values()],
                        [[r.class_name + (" (held out)" if r.class_name in held_out_classes(m) else ""),
                          *(r.recall(key) for key in SHORT_NAMES)] for r in errors.worst])]

    out.append("## 8. Held-out combinations\n")
    out += [f"Zero-shot top-1 on the classes seen in pretraining and on the {len(held.held_out_classes)} held "
            f"out of it ({', '.join(held.held_out_classes)}); chance {held.chance_top1:.4f}.\n",
            table(["prompt", "seen top-1", "held-out top-1"],
                  [[f"`{t.template}`", t.test.seen_top1, t.test.held_out_top1] for t in held.templates.values()]
                  + [[f"best template, {key}", groups.seen_top1, groups.held_out_top1]
                     for key, groups in (("cosine", held.cosine), ("dot", held.dot))])] if held else [
        not_measured("heldout")]

    out += ["## 9. Zero-shot or probe?\n",
            f"- **Labelled data**: zero-shot none; the full probe {probe.num_train_images} images "
            f"({probe.num_train_images // z.num_classes} per class)"
            + (f"; the few-shot probe overtakes zero-shot {overtaken}" if overtaken else "") + ".",
            f"- **Accuracy** (top-1): zero-shot {top1_text(best.test)} (`{chosen_label(z)}`); torch probe "
            f"{top1_text(probe.test)} ({probe.test.top1 - best.test.top1:+.4f}, {verdict_of(probe_vs_zeroshot)})"
            + (f"; logreg probe {top1_text(lr.test)} ({lr.test.top1 - best.test.top1:+.4f}, "
               f"{verdict_of(logreg_vs_zeroshot)})" if lr else "") + ".",
            f"- **Flexibility**: zero-shot classified these {z.num_classes} classes from their names alone and "
            "takes a new class by its name; a probe needs labelled images of every new class and a new training run.",
            f"- **Cost**: zero-shot encodes {z.num_classes} classes x {prompt_count(z)} prompt(s) once; the "
            f"torch probe trains {probe.epochs} epochs twice (choosing the epoch, then on all images) over "
            f"{probe.num_train_images} cached image features"
            + (f", the logreg probe makes {len(m.logreg_sweep)} sweep fits and a refit" if lr and m.logreg_sweep
               else "") + "; the metrics files record no wall times.\n"]
    return "\n".join(part for part in out if part)
