"""The files of the wiseft stage: WiSE-FT's weight-space mix of the zero-shot head with a fitted head, alpha from 0
(zero-shot) to 1 (the fitted head), on the source's test images, alpha chosen on a validation split."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Scores, Top1Interval


@dataclass(frozen=True, kw_only=True)
class WiseftRow(Record):
    """One alpha of a curve."""

    alpha: float = meaning("the mixing weight: 0 is the zero-shot head, 1 the fitted head")
    val_top1: float = meaning("top-1 of the validation-side mix (see chosen_by) on the validation images")
    test: Scores = meaning("scores of the mix with the fitted head on the test images", inline=True)


@dataclass(frozen=True, kw_only=True)
class WiseftCurve(Record):
    """The mixes of the zero-shot head with one fitted head."""

    fitted: str = meaning("name of the fitted head (alpha = 1) in its stage's heads file, e.g. 'logreg'")
    chosen_by: str = meaning("name of the head whose mixes chose alpha on the validation images: one that never "
                             "trained on them (for logreg the sweep's probe at the chosen C)")
    num_val_images: int = meaning("validation images alpha is chosen on: the fitting stage's split of train (count)")
    chosen_alpha: float = meaning("the alpha with the best validation top-1, the smaller on a tie")
    chosen_val_top1: float = meaning("its validation top-1")
    chosen_test: Top1Interval = meaning("its mix's test top-1 with the bootstrap interval")
    interior_beats_ends: bool = meaning("whether an alpha strictly between 0 and 1 has a test top-1 above both "
                                        "zero-shot (alpha = 0) and the fitted head (alpha = 1): point values, no "
                                        "interval")
    rows: list[WiseftRow] = meaning("one row per alpha, ascending")


@dataclass(frozen=True, kw_only=True)
class WiseftMetrics(Record):
    """WiSE-FT's alpha curve on the source: no head fitted here, every one read from the fitting stages' heads files."""

    num_classes: int = meaning("classes of the subset (count)")
    num_test_images: int = meaning("test images (count)")
    zero_shot: str = meaning("name of the zero-shot head (alpha = 0) in zeroshot's heads file: its chosen classifier")
    alphas: list[float] = meaning("the mixing weights, WiSE-FT's fixed grid 0, 0.1, ..., 1")
    curves: dict[str, WiseftCurve] = meaning("one curve per fitted head: 'logreg' (the logistic probe refitted on all "
                                             "train), 'zsinit' (the zero-shot-initialised head of k = all)",
                                             keyed_by="curve")


@dataclass(frozen=True, kw_only=True)
class WiseftPlotRow(Record):
    """One alpha of a curve as DVC plots it."""

    curve: str = meaning("the curve: 'logreg' or 'zsinit' (wiseft.json's curves key)")
    alpha: float = meaning("the mixing weight")
    val_top1: float = meaning("validation top-1 of the validation-side mix")
    test_top1: float = meaning("test top-1 of the mix")


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/wiseft.json", stage="wiseft", record=WiseftMetrics,
                about="WiSE-FT's mix of the zero-shot head with the logistic probe and with the zero-shot-initialised "
                      "head, alpha from 0 to 1, on the source's test images."),
    MetricsFile(path="metrics/models/<model>/<dataset>/wiseft_curve.json", stage="wiseft", record=WiseftPlotRow,
                layout="rows", about="The wiseft curves for DVC plots, one row per curve and alpha."),
)
