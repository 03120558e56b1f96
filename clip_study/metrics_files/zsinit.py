"""The files of the zsinit stage: a linear head that starts as the zero-shot classifier, trained on k images per
class, and its mix with zero-shot, the mixing weight chosen on validation."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import RunsTop1, Shots


@dataclass(frozen=True, kw_only=True)
class MixedRuns(RunsTop1):
    """The trained head mixed with its zero-shot start, per run with the alpha validation chose."""

    mean_alpha: float = meaning("the chosen mixing weight averaged over the runs (0: zero-shot, 1: the trained "
                                "head; 6 decimals)")
    alphas: list[float] = meaning("each run's chosen mixing weight")
    mean_val_top1: float = meaning("validation top-1 of each run's chosen mix, averaged over the runs")


@dataclass(frozen=True, kw_only=True)
class ZsinitPoint(Record):
    """One k of the curve."""

    shots: Shots = meaning("how many images per class, how many runs", inline=True)
    init: RunsTop1 = meaning("the head trained from zero-shot, on the test images")
    mix: MixedRuns = meaning("its mix with zero-shot, on the test images")


@dataclass(frozen=True, kw_only=True)
class ZsinitMetrics(Record):
    """The few-shot curve of the zero-shot-initialised head, on the fewshot stage's k and seeds."""

    num_classes: int = meaning("classes of the subset (count)")
    zero_shot: str = meaning("key of the zero-shot classifier the head starts from: zeroshot.json's best")
    logit_scale: float = meaning("the head's scale from cosine to logits: zeroshot.json's logit_scale")
    zero_shot_top1: float = meaning("the starting classifier's test top-1")
    zero_shot_val_top1: float = meaning("its top-1 on the validation split")
    num_fit_images: int = meaning("train images the heads may train on: train minus the validation split (count)")
    num_val_images: int = meaning("validation images, which choose the mixing weight (count)")
    alphas: list[float] = meaning("the mixing weights tried, 0 (zero-shot) to 1 (the trained head)")
    curve: list[ZsinitPoint] = meaning("one point per k, ascending, 'all' last")


@dataclass(frozen=True, kw_only=True)
class ZsinitPlotRow(Record):
    """A point of the curve as DVC plots it."""

    k: int = meaning("labelled train images per class (zsinit.json's k)")
    init_mean_top1: float = meaning("the trained head's test top-1 averaged over the runs")
    mix_mean_top1: float = meaning("its mix's test top-1 averaged over the runs")

    @classmethod
    def of(cls, point: ZsinitPoint) -> ZsinitPlotRow:
        return cls(k=point.shots.k, init_mean_top1=point.init.mean_top1, mix_mean_top1=point.mix.mean_top1)


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/zsinit.json", stage="zsinit", record=ZsinitMetrics,
                about="The zero-shot-initialised head and its mix with zero-shot, on k labelled images per class."),
    MetricsFile(path="metrics/models/<model>/<dataset>/zsinit_curve.json", stage="zsinit", record=ZsinitPlotRow,
                layout="rows", about="The zsinit curve for DVC plots, one row per k."),
)
