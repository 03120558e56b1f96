"""The files of the fewshot stage: the logistic probe trained on k images per class, the few-shot curve."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import RunsTop1, Shots


@dataclass(frozen=True, kw_only=True)
class CurvePoint(Record):
    """One k of the curve: the probe's runs on k random train images per class, tested on every test image."""

    shots: Shots = meaning("how many images per class, how many runs", inline=True)
    test: RunsTop1 = meaning("test top-1 over the runs", inline=True)


@dataclass(frozen=True, kw_only=True)
class FewshotMetrics(Record):
    """The CLIP paper's few-shot curve."""

    num_classes: int = meaning("classes of the subset (count)")
    C: float = meaning("the C of every fit: the one logreg chose on all train images (logreg.json's C)")
    curve: list[CurvePoint] = meaning("one point per k, ascending, 'all' last")


@dataclass(frozen=True, kw_only=True)
class FewshotPlotRow(Record):
    """A point of the curve as DVC plots it."""

    k: int = meaning("labelled train images per class (fewshot.json's k)")
    mean_top1: float = meaning("test top-1 averaged over the runs")
    min_top1: float = meaning("the lowest run's test top-1")
    max_top1: float = meaning("the highest run's test top-1")
    top1_low: float = meaning("lower bound of the bootstrap interval of mean_top1")
    top1_high: float = meaning("upper bound of the bootstrap interval of mean_top1")

    @classmethod
    def of(cls, point: CurvePoint) -> FewshotPlotRow:
        runs = point.test
        return cls(k=point.shots.k, mean_top1=runs.mean_top1, min_top1=runs.min_top1, max_top1=runs.max_top1,
                   top1_low=runs.top1_low, top1_high=runs.top1_high)


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/fewshot.json", stage="fewshot", record=FewshotMetrics,
                about="Test top-1 of the logistic probe on k labelled images per class, over seeded runs."),
    MetricsFile(path="metrics/models/<model>/<dataset>/fewshot_curve.json", stage="fewshot", record=FewshotPlotRow,
                layout="rows", about="The few-shot curve for DVC plots, one row per k."),
)
