"""The leaderboard's distribution-shift part: each model's classifiers fitted on a dataset, scored on the average
over ALL of that dataset's shift sets (``evaluate_shift`` rerun on the predictions files the shift stage left, so
the average has paired intervals as each set has), the front page's section that answers the CLIP paper's question
with the numbers, and its figure.

The words come from the intervals alone: a drop is 'more' or 'less' than zero-shot's when its interval against
zero-shot's excludes 0, 'not distinguishable' otherwise; an alpha curve 'beats both ends' when the interval of its
best interior point minus the better end lies above 0.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.shift import ShiftEvaluation, evaluate_shift
from clip_study.metrics_files.leaderboard import HEADLINES, ModelShift, ShiftBoard, ShiftHeadline
from clip_study.metrics_files.shift import FILES as SHIFT_FILES
from clip_study.metrics_files.shift import CurveCheck, Estimate, ShiftMetrics, ShiftRow
from clip_study.reporting.plotting import BLUE, GREEN, ORANGE, plt, save
from clip_study.reporting.shift import (ShiftPredictions, alpha_curves, curve_points, curve_records, drop_comparison,
                                        estimate_record, fit_record, load_predictions)
from clip_study.reporting.shift_figure import draw_robustness
from clip_study.reporting.text import interval_text, markdown_table, p_text, points

Fix = Callable[[str, str], str]
"""(model, shift set) -> how to rebuild that pair's shift files (the shift stage's rerun line)."""
ShiftInputs = dict[str, tuple[ShiftMetrics, ShiftPredictions]]
"""One model on one dataset's shift sets, in the params' order: shift set -> its shift.json and predictions file."""
HEADLINE_NAMES = {"zeroshot": "zero-shot", "probe": "linear probe", "logreg": "logistic probe",
                  "zsinit_mix": "zsinit mix, k = all", "wiseft_logreg": "WiSE-FT logreg",
                  "wiseft_zsinit": "WiSE-FT zsinit"}
"""Each headline role on the front page."""
PROBES = ("logreg", "probe")
"""The fitted probes whose drop the front page compares with zero-shot's, in words."""


def shift_sets(sources: dict[str, str], datasets: list[str]) -> dict[str, list[str]]:
    """Each dataset with shift sets -> their short names, both in the params' order (``sources``: each shift set ->
    the dataset whose classifiers it is scored with)."""
    found: dict[str, list[str]] = {}
    for shift, source in sources.items():
        found.setdefault(source, []).append(shift)
    return {dataset: found[dataset] for dataset in datasets if dataset in found}


def read_shift_inputs(metrics_dir: Path, predictions_dir: Path, model: str, shifts: list[str], fix: Fix) -> ShiftInputs:
    """One model's shift.json and predictions file of each shift set of one dataset (the shift stage's files under
    ``<metrics_dir>/<model>/<shift>/`` and ``<predictions_dir>/<model>/<shift>.npz``)."""
    return {shift: (SHIFT_FILES[0].read(metrics_dir / model / shift / "shift.json", fix=fix(model, shift)),
                    load_predictions(predictions_dir / model / f"{shift}.npz", fix=fix(model, shift)))
            for shift in shifts}


def headline_rows(rows: list[ShiftRow]) -> dict[str, ShiftRow]:
    """The headline classifiers among a shift.json's rows, by role (HEADLINES' order; a role the pair lacks, e.g.
    no zsinit k = all, is left out)."""
    found = {}
    for role in HEADLINES:
        if role in ("probe", "logreg"):
            match = [row for row in rows if row.name == role]
        elif role == "zsinit_mix":
            match = [row for row in rows if row.classifier == role and row.k == "all"]
        else:  # zeroshot and the WiSE-FT curves: the one chosen
            match = [row for row in rows if row.classifier == role and row.chosen]
        if match:
            found[role] = match[0]
    return found


def check_shift_files(model: str, source: str, inputs: ShiftInputs, fix: Fix) -> None:
    """Refuse what would average other classifiers or images than the shift.json files report: a shift.json of
    another dataset, a predictions file whose top-1 is not its shift.json's (stale), or files of one dataset that
    disagree on the classifiers, the reference, the fit set or the dataset's test images."""
    (first, (first_metrics, base)), *others = inputs.items()
    for shift, (metrics, predictions) in inputs.items():
        if metrics.source != source:
            raise UserError(f"the shift.json of {model} on {shift} scores classifiers fitted on {metrics.source}, the "
                            f"params make {shift} a shift set of {source}: {fix(model, shift)}")
        index = {name: i for i, name in enumerate(predictions.names)}
        for row in metrics.classifiers:
            i = index.get(row.name)
            scored = None if i is None else (round(float(predictions.source.correct[i].mean()), 6),
                                             round(float(predictions.shift.correct[i].mean()), 6))
            if scored != (row.source.value, row.shift.value):
                raise UserError(f"the predictions of {model} on {shift} score {row.name} at (source, shift) top-1 "
                                f"{scored}, its shift.json ({row.source.value}, {row.shift.value}): stale; "
                                f"{fix(model, shift)}")
    reported = [row.name for row in first_metrics.classifiers]
    for shift, (metrics, predictions) in others:
        for what, same in (
                ("classifiers", predictions.names == base.names and predictions.kinds == base.kinds
                 and [row.name for row in metrics.classifiers] == reported),
                ("reference zero-shot", predictions.reference == base.reference),
                ("fit set", predictions.fit_set == base.fit_set),
                (f"{source} test images", np.array_equal(predictions.source.labels, base.source.labels)
                 and np.array_equal(predictions.source.correct, base.source.correct))):
            if not same:
                raise UserError(f"the predictions of {model} on {shift} and on {first} differ in their {what} (one "
                                f"is stale): {fix(model, shift)}, or that of {first}")


def average_evaluation(inputs: ShiftInputs, curves: dict[str, list[int]], bootstrap: Bootstrap) -> ShiftEvaluation:
    """``evaluate_shift`` over every shift set of ``inputs`` (checked) at once: the shift average."""
    predictions = [p for _, p in inputs.values()]
    first = predictions[0]
    return evaluate_shift(first.source, [p.shift for p in predictions], bootstrap, reference=first.reference,
                          fit_set=first.fit_set, curves=list(curves.values()))


def average_rows(rows: list[ShiftRow], names: list[str], evaluation: ShiftEvaluation) -> list[ShiftRow]:
    """A shift.json's rows with their numbers on the shift average (``names``: the evaluation's rows)."""
    index = {name: i for i, name in enumerate(names)}
    return [dataclasses.replace(
        row, source=estimate_record(evaluation.source, index[row.name]),
        shift=estimate_record(evaluation.shift, index[row.name]), drop=estimate_record(evaluation.drop, index[row.name]),
        effective_robustness=estimate_record(evaluation.effective_robustness, index[row.name]),
        drop_vs_zero_shot=drop_comparison(evaluation, index[row.name])) for row in rows]


def model_shift(model: str, source: str, inputs: ShiftInputs, bootstrap: Bootstrap,
                fix: Fix) -> tuple[ModelShift, list[ShiftRow]]:
    """One model on the average over one dataset's shift sets: its leaderboard entry, and every reported
    classifier's row on the average (results.csv's ``average`` rows)."""
    check_shift_files(model, source, inputs, fix)
    metrics, predictions = next(iter(inputs.values()))
    alphas = {row.name: row.alpha for row in metrics.classifiers}
    names_alphas = [alphas.get(name) for name in predictions.names]  # None for the fit set's heads
    curves = alpha_curves(predictions.kinds, names_alphas)
    evaluation = average_evaluation(inputs, curves, bootstrap)
    rows = average_rows(metrics.classifiers, predictions.names, evaluation)
    per_set = {shift: {row.name: row.shift.value for row in m.classifiers} for shift, (m, _) in inputs.items()}
    headlines = {role: ShiftHeadline(name=row.name, alpha=row.alpha if role.startswith("wiseft") else None,
                                     source=row.source, shift=row.shift, drop=row.drop,
                                     effective_robustness=row.effective_robustness,
                                     drop_vs_zero_shot=row.drop_vs_zero_shot,
                                     shift_sets={shift: top1[row.name] for shift, top1 in per_set.items()})
                 for role, row in headline_rows(rows).items()}
    entry = ModelShift(reference=predictions.names[predictions.reference], classifiers=headlines,
                       fit=fit_record(evaluation, predictions.names),
                       curves=curve_records(curves, names_alphas, evaluation),
                       alpha_curves=curve_points(curves, names_alphas, evaluation))
    return entry, rows


def build_shift_boards(inputs: dict[str, dict[str, ShiftInputs]], bootstrap: Bootstrap,
                       fix: Fix) -> tuple[dict[str, ShiftBoard], dict[tuple[str, str], list[ShiftRow]]]:
    """Every dataset with shift sets (``inputs``: model -> dataset -> its shift sets, the params' order): the
    leaderboard's ``shift`` entries by dataset, and each (model, dataset)'s rows on the shift average."""
    models = list(inputs)
    sources = list(next(iter(inputs.values()))) if models else []
    boards, averages = {}, {}
    for source in sources:
        entries = {}
        for model in models:
            entries[model], averages[model, source] = model_shift(model, source, inputs[model][source], bootstrap, fix)
        first = inputs[models[0]][source]
        counts = {shift: metrics.num_images for shift, (metrics, _) in first.items()}
        for model in models[1:]:
            found = {shift: metrics.num_images for shift, (metrics, _) in inputs[model][source].items()}
            if found != counts:
                shift = next(s for s in counts if found[s] != counts[s])
                raise UserError(f"{model} and {models[0]} were scored on different images of {shift} ({found[shift]} "
                                f"and {counts[shift]}): {fix(model, shift)}")
        boards[source] = ShiftBoard(shift_sets=counts,
                                    num_source_images=next(iter(first.values()))[0].num_source_images, models=entries)
    return boards, averages


# the front page


def drop_words(name: str, probe: ShiftHeadline, zero_shot: ShiftHeadline, source: str, resamples: int) -> str:
    """Whether a probe's gain over zero-shot survives the shift, in words from its drop against zero-shot's."""
    comparison, p = probe.drop_vs_zero_shot, p_text(probe.drop_vs_zero_shot.p_value, resamples)
    gains = (f"{points(probe.source.value - zero_shot.source.value, True)} points against zero-shot on {source}, "
             f"{points(probe.shift.value - zero_shot.shift.value, True)} on the shift average")
    if comparison.low > 0:
        return (f"the {name} loses {points(comparison.value)} points more than zero-shot under shift "
                f"[{points(comparison.low)}, {points(comparison.high)}], {p} ({gains})")
    if comparison.high < 0:
        return (f"the {name} loses {points(-comparison.value)} points less than zero-shot under shift "
                f"[{points(-comparison.high)}, {points(-comparison.low)}], {p} ({gains})")
    return (f"the {name}'s drop is not distinguishable from zero-shot's ({points(comparison.value, True)} points "
            f"[{points(comparison.low, True)}, {points(comparison.high, True)}], {p}; {gains})")


def curve_words(check: CurveCheck) -> str:
    """Whether an interior alpha of a WiSE-FT curve beats both ends on the shift average, in words."""
    name = HEADLINE_NAMES[check.curve]
    difference = check.difference
    interval = (f"{points(difference.value, True)} points [{points(difference.low, True)}, "
                f"{points(difference.high, True)}]")
    if check.beats_both_ends:
        return f"{name}: alpha {check.best_alpha:g} beats both ends on the shift average ({interval})"
    return f"{name}: no interior alpha beats both ends distinguishably (the best, alpha {check.best_alpha:g}: {interval})"


def model_line(model: str, entry: ModelShift, source: str, resamples: int) -> str:
    """One model's answer on one dataset: each probe's drop against zero-shot's, then each WiSE-FT curve."""
    zero_shot = entry.classifiers["zeroshot"]
    parts = [drop_words(HEADLINE_NAMES[role], entry.classifiers[role], zero_shot, source, resamples)
             for role in PROBES if role in entry.classifiers]
    text = "; ".join(parts) or "no probe to compare with zero-shot"
    curves = ". ".join(curve_words(check) for check in entry.curves)
    return f"- **{model}**: {text}." + (f" {curves}." if curves else "")


def _classifier_label(role: str, headline: ShiftHeadline, code: str = "`") -> str:
    """A headline's name on the front page (``code``: how its zero-shot key is quoted; none in a figure)."""
    if role == "zeroshot":
        return f"zero-shot ({code}{headline.name.split('/', 1)[-1]}{code})"
    if headline.alpha is not None:
        return f"{HEADLINE_NAMES[role]} (alpha {headline.alpha:g})"
    return HEADLINE_NAMES[role]


def _estimate_text(estimate: Estimate, signed: bool = False) -> str:
    if signed:
        return f"{estimate.value:+.4f} [{estimate.low:+.4f}, {estimate.high:+.4f}]"
    return interval_text(estimate.value, estimate.low, estimate.high)


def source_table(source: str, board: ShiftBoard) -> list[str]:
    """Models x headline classifiers on one dataset: source top-1, each shift set's, the shift average, the drop
    and effective robustness, with intervals."""
    header = ["model", "classifier", f"{source} top-1", *board.shift_sets, "shift average", "drop",
              "effective robustness"]
    rows = []
    for model, entry in board.models.items():
        for role, headline in entry.classifiers.items():
            rows.append([f"**{model}**", _classifier_label(role, headline), _estimate_text(headline.source),
                         *(f"{headline.shift_sets[shift]:.4f}" for shift in board.shift_sets),
                         _estimate_text(headline.shift), _estimate_text(headline.drop),
                         _estimate_text(headline.effective_robustness, signed=True)])
    return markdown_table(header, rows)


def shift_section(boards: dict[str, ShiftBoard], figures: dict[str, str], robustness: dict[tuple[str, str], str],
                  confidence: float, resamples: int) -> list[str]:
    """The front page's '## Distribution shift': per dataset with shift sets, its table, one line per model in
    words, links to each (model, shift set)'s robustness figure (``robustness``: (model, shift) -> relative path)
    and the section's figure (``figures``: file name -> relative path)."""
    out = ["## Distribution shift\n",
           "The CLIP paper's question (Radford et al. 2021, §3.3): does what a classifier fitted on a dataset gains "
           "over zero-shot survive a shift of the images? Each dataset's classifiers are scored on its test-only "
           "shift sets, logits restricted to the classes each set matches; the shift average weighs every set the "
           "same. Drop: top-1 on the dataset minus the shift average. Effective robustness: the shift average above "
           "the logit-axis line through the probes fitted on the dataset alone (Taori et al. 2020). Each interval is "
           f"a {round(100 * confidence)} % paired bootstrap interval from {resamples} draws, every classifier on the "
           "same draws, so a drop is compared with zero-shot's draw by draw (more or less: the interval of the "
           "difference excludes 0). Every classifier on every shift set and on the average: "
           "[`results.csv`](results.csv), task `distribution_shift`.\n"]
    for source, board in boards.items():
        sets = ", ".join(f"{shift} ({count} images)" for shift, count in board.shift_sets.items())
        out += [f"### {source}: {len(board.shift_sets)} shift set{'s' if len(board.shift_sets) > 1 else ''}\n",
                f"Shift sets: {sets}; {board.num_source_images} test images of {source}.\n",
                *source_table(source, board),
                *(model_line(model, entry, source, resamples) for model, entry in board.models.items()), "",
                "Each shift set's robustness figure: " + "; ".join(
                    f"{model}: " + ", ".join(f"[{shift}]({robustness[model, shift]})" for shift in board.shift_sets)
                    for model in board.models) + ".\n",
                f"![effective robustness on the shift average of {source}, one panel per model]"
                f"({figures[shift_figure_name(source)]})\n"]
    return out


def shift_figure_name(source: str) -> str:
    return f"shift_{source}.png"


def plot_shift_average(source: str, board: ShiftBoard, figures: Path) -> str:
    """Effective robustness on the shift average of one dataset, a panel per model (logit axes, the fit line and
    its points, zero-shot, the probes, both WiSE-FT curves with their chosen alpha); the file name."""
    models = list(board.models)
    fig, axes = plt.subplots(1, len(models), figsize=(6.0 * len(models), 5.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        entry = board.models[model]
        marked = [(entry.classifiers[role].source.value, entry.classifiers[role].shift.value, color, marker,
                   _classifier_label(role, entry.classifiers[role], code=""))
                  for role, color, marker in (("zeroshot", ORANGE, "*"), ("probe", BLUE, "s"), ("logreg", GREEN, "D"))
                  if role in entry.classifiers]
        chosen = {role: (headline.alpha, headline.source.value, headline.shift.value)
                  for role, headline in entry.classifiers.items() if headline.alpha is not None}
        draw_robustness(ax, entry.fit, marked, entry.alpha_curves, chosen, source)
        ax.set(xlabel=f"{source} top-1 (%, logit scale)", ylabel="shift average top-1 (%, logit scale)",
               title=f"{model}: {', '.join(board.shift_sets)} against {source}")
    figures.mkdir(parents=True, exist_ok=True)
    name = shift_figure_name(source)
    save(fig, figures, name.removesuffix(".png"))
    return name
