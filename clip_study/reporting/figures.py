"""A model's report figures, as PNG files readable offline (``dvc plots show`` writes HTML that loads its
JavaScript from a CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clip_study.reporting.plotting import BLUE, GREEN, GREY, ORANGE, interval_spans, plt, save
from clip_study.reporting.results import (SHORT_NAMES, ModelResults, chosen_label, held_out_classes, prompt_rows,
                                          shorten)


def plot_prompts(m: ModelResults, figures: Path) -> None:
    rows = prompt_rows(m.zeroshot)[::-1]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(rows)))
    colors = [ORANGE if kind == "ensemble" else BLUE for kind, _, _ in rows]
    top1 = np.array([r[2].test.top1 for r in rows])
    hatches = ["//" if kind == "ensemble" else "" for kind, _, _ in rows]
    bars = ax.barh(range(len(rows)), top1, color=colors, xerr=interval_spans([r[2].test for r in rows]),
                   capsize=3, error_kw={"elinewidth": 1}, hatch=hatches)
    ax.bar_label(bars, fmt="%.4f", padding=14, fontsize=8)
    chosen = chosen_label(m.zeroshot)
    ax.set_yticks(range(len(rows)), [shorten(label) + (" (chosen)" if label == chosen else "") for _, label, _ in rows],
                  fontsize=8)
    ax.axvline(m.zeroshot.chance_top1, color="red", linestyle="--", label="chance")
    ax.bar(0, 0, color=BLUE, label="single template"), ax.bar(0, 0, color=ORANGE, hatch="//", label="ensemble")
    ax.set(xlim=(0, 1.2), xlabel="zero-shot top-1 (cosine) with its bootstrap interval",
           title="Zero-shot top-1 per prompt")
    ax.legend(loc="lower right", fontsize=8)
    save(fig, figures, "prompts")


def plot_similarity(m: ModelResults, figures: Path) -> None:
    s = m.similarity
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.arange(2)
    for offset, (scores, label, color) in ((-0.2, (s.cosine.test, "cosine", BLUE)),
                                           (0.2, (s.dot.test, "dot product", ORANGE))):
        bars = left.bar(x + offset, [scores.top1, scores.macro_f1], 0.4, label=label, color=color)
        left.bar_label(bars, fmt="%.4f", fontsize=8)
    left.set_xticks(x, ["top-1", "macro-F1"])
    left.set(ylim=(0, 1.22), title=f"Cosine vs dot product ({s.template})")
    left.legend(loc="upper center", ncol=2, fontsize=8)
    for y, (n, color) in enumerate(((s.image_norms, GREY), (s.text_norms, BLUE))):
        right.plot([n.min, n.max], [y, y], color=color, marker="|", markersize=14)
        right.errorbar(n.mean, y, xerr=n.std, fmt="o", color=color, capsize=6, linewidth=3)
        right.annotate(f"{n.min:.2f} | {n.mean:.2f} ± {n.std:.2f} | {n.max:.2f}", (n.mean, y + 0.18),
                       ha="center", fontsize=8)
    right.set_yticks([0, 1], ["image", "class text"])
    right.set(ylim=(-0.5, 1.6), xlabel="L2 norm (min | mean ± std | max)", title="Embedding norms")
    save(fig, figures, "similarity")


def plot_probe_curve(m: ModelResults, figures: Path) -> None:
    curve = m.probe_curve
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [c.epoch for c in curve]
    ax.plot(epochs, [c.test.top1 for c in curve], marker=".", color=BLUE, label="probe top-1")
    ax.plot(epochs, [c.test.macro_f1 for c in curve], marker="x", linestyle=":", color=GREEN, label="probe macro-F1")
    ax.plot(epochs, [c.val_top1 for c in curve], marker=".", linestyle="-.", color=GREY,
            label="validation top-1 (run without the validation images)")
    ax.axvline(m.probe.chosen_epoch, color=BLUE, linestyle=":", label="epoch chosen on validation")
    ax.axhline(m.zeroshot.best_top1, color=ORANGE, linestyle="--", label="zero-shot top-1 (chosen classifier)")
    if m.logreg:
        ax.axhline(m.logreg.test.top1, color=GREY, linestyle=":", label="logreg probe top-1")
    ax.set(xlabel="epoch", ylabel="test score", title="Linear probe (torch) per epoch")
    ax.legend(fontsize=8)
    save(fig, figures, "probe_curve")


def plot_logreg_sweep(m: ModelResults, figures: Path) -> None:
    sweep, chosen = m.logreg_sweep, m.logreg
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r.log10_C for r in sweep], [r.val_top1 for r in sweep], marker="o", color=BLUE)
    ax.axvline(np.log10(chosen.C), color=ORANGE, linestyle="--", label=f"chosen C = {chosen.C:.4g}")
    ax.plot(np.log10(chosen.C), chosen.val_top1, marker="*", markersize=16, color=ORANGE)
    ax.set(xlabel="log10 C (inverse L2 regularisation)", ylabel="validation top-1",
           title="Logistic regression: C sweep")
    ax.legend(fontsize=8)
    save(fig, figures, "logreg_sweep")


def plot_fewshot(m: ModelResults, figures: Path) -> None:
    zeroshot, curve = m.zeroshot, m.fewshot.curve
    k = [c.shots.k for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(k, [c.test.min_top1 for c in curve], [c.test.max_top1 for c in curve], color=BLUE, alpha=0.2,
                    label="min-max over runs")
    ax.errorbar(k, [c.test.mean_top1 for c in curve], yerr=interval_spans([c.test.mean_interval() for c in curve]),
                marker="o", color=BLUE, capsize=3, label="logreg probe, mean top-1 (bootstrap interval)")
    if m.zsinit:
        rows = m.zsinit.curve
        ax.errorbar([r.shots.k for r in rows], [r.mix.mean_top1 for r in rows],
                    yerr=interval_spans([r.mix.mean_interval() for r in rows]), marker="s", color=GREEN, capsize=3,
                    label="zero-shot-initialised probe, mixed on validation")
    ax.axhline(zeroshot.best_top1, color=ORANGE, linestyle="--",
               label=f"zero-shot ({shorten(zeroshot.best_template)})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(k, [f"{c.shots.k}\n{c.shots.label}" if c.shots.label == "all" else str(c.shots.k) for c in curve])
    ax.minorticks_off()
    ax.set(xlabel="labelled images per class (k)", ylabel="test top-1", title="Few-shot probe against zero-shot")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, figures, "fewshot")


@dataclass(frozen=True)
class ReliabilitySeries:
    """One line of a reliability diagram: its non-empty confidence bins, in order."""

    label: str  # the legend: as predicted or the temperature, with the ECE
    color: str
    lower: list[float]  # each bin's bounds
    upper: list[float]
    confidence: list[float]  # its images' mean confidence (x) and the fraction right (y)
    accuracy: list[float]
    count: list[int]  # its test images: how far to trust the point


@dataclass(frozen=True)
class ReliabilityPanel:
    """One classifier's reliability diagram: as predicted, then after temperature scaling."""

    title: str
    series: list[ReliabilitySeries]


def reliability_panels(m: ModelResults) -> list[ReliabilityPanel]:
    """What the reliability diagrams draw, per classifier: accuracy against confidence per bin, and how many test
    images each bin holds (a bin of 4 images says little next to one of 500)."""
    panels = []
    for name, result in (("zero-shot", m.zeroshot), ("probe", m.probe), ("logreg probe", m.logreg)):
        if not result:
            continue
        calibration = result.calibration
        versions = ((calibration.before, calibration.reliability_before, ORANGE, "as predicted"),
                    (calibration.after, calibration.reliability_after, BLUE,
                     f"temperature {calibration.temperature:.3g}"))
        panels.append(ReliabilityPanel(title=name, series=[
            ReliabilitySeries(label=f"{label} (ECE {scores.ece:.3f})", color=color, lower=[b.lower for b in bins],
                              upper=[b.upper for b in bins], confidence=[b.confidence for b in bins],
                              accuracy=[b.accuracy for b in bins], count=[int(b.count) for b in bins])
            for scores, bins, color, label in versions]))
    return panels


def plot_reliability(m: ModelResults, figures: Path) -> None:
    """Reliability diagrams, before and after temperature scaling, each over a strip of its bins' image counts."""
    panels = reliability_panels(m)
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 5.4), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 1.3]})
    for (diagram, strip), panel in zip(axes.T, panels):
        diagram.plot([0, 1], [0, 1], color=GREY, linestyle=":", label="perfect calibration")
        most = max(max(series.count) for series in panel.series)
        for i, series in enumerate(panel.series):
            diagram.plot(series.confidence, series.accuracy, marker="o", color=series.color, label=series.label)
            width = [(upper - lower) / (len(panel.series) + 1) for lower, upper in zip(series.lower, series.upper)]
            bars = strip.bar([lower + w * (i + 0.5) for lower, w in zip(series.lower, width)], series.count,
                             width, align="edge", color=series.color)
            strip.bar_label(bars, fontsize=6, rotation=90, padding=1)
        diagram.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=panel.title)
        diagram.legend(fontsize=7, loc="lower right")
        strip.set(ylim=(0, most * 1.6), xlabel="confidence (top probability)", ylabel="test images")
    save(fig, figures, "reliability")


def plot_confusion(m: ModelResults, figures: Path) -> None:
    errors, names = m.errors, m.errors.names
    chosen = list(dict.fromkeys(n for p in errors.pairs["zeroshot"] for n in (p["actual"], p["predicted"])))[:10]
    idx = [names.index(n) for n in chosen]
    sub = errors.matrices["zeroshot"][np.ix_(idx, idx)].astype(float)
    off = np.where(np.eye(len(idx), dtype=bool) | (sub == 0), np.nan, sub)  # white: none, grey: correct
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * len(idx), 1.5 + 0.5 * len(idx)))
    ax.imshow(np.eye(len(idx)), cmap="Greys", vmax=6)  # light grey diagonal (correct)
    vmax = max(np.nan_to_num(off).max(), 1)
    image = ax.imshow(off, cmap="Reds", vmin=0, vmax=vmax)
    for (i, j), count in np.ndenumerate(sub):
        if count:
            ax.text(j, i, int(count), ha="center", va="center", fontsize=8,
                    color="white" if i != j and count > 0.6 * vmax else "black")
    ax.set_xticks(range(len(idx)), chosen, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(idx)), chosen, fontsize=8)
    ax.set(xlabel="predicted (grey: correct)", ylabel="actual",
           title="Zero-shot confusions among the most confused classes")
    fig.colorbar(image, ax=ax, label="mistakes")
    save(fig, figures, "confusion")


def plot_per_class(m: ModelResults, figures: Path) -> None:
    worst, held_out = m.errors.worst, held_out_classes(m)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(worst)))
    y = np.arange(len(worst))[::-1]
    for offset, (key, label), color in zip((0.2, -0.2), SHORT_NAMES.items(), (ORANGE, BLUE)):
        if worst[0].recall(key) is not None:
            ax.barh(y + offset, [row.recall(key) for row in worst], 0.4, color=color, label=label)
    ax.set_yticks(y, [row.class_name + (" *" if row.class_name in held_out else "") for row in worst], fontsize=8)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set(xlim=(0, 1.25), title=f"The {len(worst)} worst classes of zero-shot",
           xlabel="per-class accuracy (recall)" + ("; * held out of pretraining" if held_out else ""))
    ax.legend(fontsize=8, loc="lower right")
    save(fig, figures, "per_class")


def draw_figures(m: ModelResults, figures: Path) -> set[str]:
    """Draw every figure the loaded results (``results.load_model_results``) have the data for into ``figures``;
    the names of those drawn. A figure whose data has gone is deleted, so it cannot linger."""
    errors = m.errors
    plots = {plot_prompts: True, plot_similarity: True, plot_probe_curve: True,
             plot_logreg_sweep: bool(m.logreg and m.logreg_sweep), plot_fewshot: bool(m.fewshot),
             plot_reliability: True,
             plot_confusion: bool(errors and errors.pairs.get("zeroshot")),
             plot_per_class: bool(errors and "zeroshot" in errors.pairs)}
    figures.mkdir(parents=True, exist_ok=True)
    drawn = set()
    for plot, wanted in plots.items():
        name = plot.__name__.removeprefix("plot_")
        (figures / f"{name}.png").unlink(missing_ok=True)
        if wanted:
            plot(m, figures)
            drawn.add(name)
    return drawn
