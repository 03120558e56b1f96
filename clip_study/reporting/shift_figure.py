"""The robustness figure of the papers (Taori et al. 2020, CLIP, WiSE-FT): shift top-1 against source top-1 on
logit-scaled axes, where the probes fitted on the source fall near a line and a classifier above it is
effectively robust."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from clip_study.metrics_files.shift import LogitFit, ShiftAlphaRow, ShiftMetrics
from clip_study.reporting.plotting import BLUE, GREEN, GREY, ORANGE, plt, save

PURPLE, BROWN = "#9467bd", "#8c564b"
TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _expit(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


Marked = tuple[float, float, str, str, str]
"""A classifier drawn on its own: (source top-1, shift top-1, colour, marker, label)."""


def draw_robustness(ax, fit: LogitFit, marked: list[Marked], curve: list[ShiftAlphaRow],
                    chosen: dict[str, tuple[float, float, float]], source: str) -> None:
    """One robustness panel on ``ax``: the fit set and its line, y = x, the ``marked`` classifiers, both WiSE-FT
    curves and their chosen alpha (``chosen``: curve -> (alpha, source top-1, shift top-1)), logit axes with
    percent ticks; shared by a pair's figure and the front page's."""
    clip = max(fit.source_clip, fit.shift_clip)
    xs = [p.source_top1 for p in fit.points] + [m[0] for m in marked] + [r.source_top1 for r in curve]
    ys = [p.shift_top1 for p in fit.points] + [m[1] for m in marked] + [r.shift_top1 for r in curve]
    low, high = np.clip([min(xs + ys), max(xs + ys)], clip, 1 - clip)
    span = _logit(np.array([low, high]))
    low, high = _expit(span + np.array([-1, 1]) * max(0.1 * (span[1] - span[0]), 0.3))  # a margin in logits

    grid = _expit(np.linspace(_logit(low), _logit(high), 200))
    ax.plot(grid, grid, color="black", linestyle="--", linewidth=1, label="y = x (no drop)")
    ax.plot(grid, _expit(fit.slope.value * _logit(grid) + fit.intercept.value), color=GREY,
            label=f"fit: logit y = {fit.slope.value:.2f} logit x {fit.intercept.value:+.2f}")
    ax.scatter([p.source_top1 for p in fit.points], [p.shift_top1 for p in fit.points], s=14, color=GREY, alpha=0.7,
               label=f"probes fitted on {source} ({fit.count}, across k and C)")
    for kind, color in (("wiseft_logreg", PURPLE), ("wiseft_zsinit", BROWN)):
        points = sorted((r.alpha, r.source_top1, r.shift_top1) for r in curve if r.curve == kind)
        if points:
            _, x, y = zip(*points)
            ax.plot(x, y, color=color, marker=".", label=f"WiSE-FT {kind.split('_', 1)[1]} (alpha 0 to 1)")
            if kind in chosen:
                alpha, x, y = chosen[kind]
                ax.scatter(x, y, s=90, color=color, edgecolor="black", zorder=3,
                           label=f"  alpha {alpha:g} (chosen on validation)")
    for x, y, color, marker, label in marked:
        ax.scatter(x, y, s=160 if marker == "*" else 70, color=color, marker=marker, edgecolor="black", zorder=4,
                   label=label)
    for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        scale("logit")
        axis.set_major_locator(FixedLocator([t for t in TICKS if low <= t <= high]))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:g}"))
        axis.set_minor_locator(NullLocator())
    ax.set(xlim=(low, high), ylim=(low, high))
    ax.grid(True, color=GREY, alpha=0.2)
    ax.legend(fontsize=7, loc="upper left")


def plot_robustness(metrics: ShiftMetrics, curve: list[ShiftAlphaRow], figures: Path) -> None:
    """figures/robustness.png: the fit set and its line, y = x, the chosen zero-shot, probe and logreg, and both
    WiSE-FT curves with their chosen alpha."""
    rows = {row.name: row for row in metrics.classifiers}
    marked = [(rows[metrics.reference], ORANGE, "*", f"zero-shot ({metrics.reference.split('/', 1)[-1]})"),
              *((rows[name], color, marker, name) for name, color, marker in (("probe", BLUE, "s"),
                                                                                ("logreg", GREEN, "D"))
                if name in rows)]
    chosen = {row.classifier: (row.alpha, row.source.value, row.shift.value) for row in metrics.classifiers
              if row.classifier in ("wiseft_logreg", "wiseft_zsinit") and row.chosen}
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    draw_robustness(ax, metrics.fit, [(row.source.value, row.shift.value, *rest) for row, *rest in marked], curve,
                    chosen, metrics.source)
    ax.set(xlabel=f"{metrics.source} top-1 (%, logit scale)", ylabel=f"{metrics.shift} top-1 (%, logit scale)",
           title=f"Effective robustness: {metrics.shift} against {metrics.source}")
    save(fig, Path(figures), "robustness")
