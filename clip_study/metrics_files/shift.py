"""The files of the shift stage: every classifier fitted on a source dataset, scored on a test-only shift set of
it (logits restricted to the source classes the shift matches), with the drop from source to shift, effective
robustness over the logit-axis line of the probes, and whether WiSE-FT's interior alphas beat both ends."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Estimate


@dataclass(frozen=True, kw_only=True)
class DropComparison(Estimate):
    """A classifier's drop minus the reference zero-shot classifier's, on the same resamples."""

    p_value: float = meaning("two-sided bootstrap p-value of 'the drops are equal': min(1, 2 (m + 1) / "
                             "(resamples + 1)), m the resamples on the rarer side of 0; 1 for the reference itself")


@dataclass(frozen=True, kw_only=True)
class ShiftRow(Record):
    """One classifier (a few-shot or zsinit k: its seeded runs averaged, image by image)."""

    name: str = meaning("the classifier: 'zeroshot/<key>', 'probe', 'logreg', 'fewshot/k=<k>', 'zsinit/k=<k>', "
                        "'zsinit_mix/k=<k>', 'wiseft_logreg/alpha=<a>' or 'wiseft_zsinit/alpha=<a>'")
    classifier: str = meaning("its kind: the name's part before '/'")
    chosen: bool = meaning("the headline of a kind with several: the zero-shot key the zeroshot stage chose, a "
                           "WiSE-FT curve's alpha chosen on validation; false for every other row")
    k: str | None = meaning("labelled images per class of a few-shot or zsinit row ('all': every train image)",
                            optional=True)
    alpha: float | None = meaning("mixing weight of a WiSE-FT row: 0 zero-shot, 1 the fitted head", optional=True)
    runs: int = meaning("seeded runs averaged into the row (1 for a single head)")
    source: Estimate = meaning("top-1 on the source's test images")
    shift: Estimate = meaning("top-1 on the shift's test images, logits restricted to the matched source classes")
    drop: Estimate = meaning("source top-1 minus shift top-1: the accuracy lost to the shift")
    effective_robustness: Estimate = meaning("shift top-1 above the fit's prediction from source top-1; its interval "
                                             "refits the line on every resample")
    drop_vs_zero_shot: DropComparison = meaning("drop minus the reference zero-shot classifier's drop (negative: "
                                                "loses less than zero-shot)")


@dataclass(frozen=True, kw_only=True)
class FitPoint(Record):
    """One classifier of the fit set."""

    name: str = meaning("the head: 'fewshot/k=<k>/seed=<s>' (one run) or 'logreg/C=<C>' (one C of the sweep)")
    source_top1: float = meaning("its source top-1")
    shift_top1: float = meaning("its shift top-1")


@dataclass(frozen=True, kw_only=True)
class LogitFit(Record):
    """The baseline of effective robustness (Taori et al. 2020): logit(shift top-1) = slope * logit(source top-1) +
    intercept, least squares over the probes fitted on the source alone, across k and C."""

    slope: Estimate = meaning("the line's slope on logit axes (unitless)")
    intercept: Estimate = meaning("its intercept on logit axes (log-odds)")
    count: int = meaning("classifiers in the fit set (count)")
    source_clip: float = meaning("source top-1 is clipped into [source_clip, 1 - source_clip] before the logit: half "
                                 "an image, 0.5 / source test images")
    shift_clip: float = meaning("shift top-1 likewise: 0.5 / shift test images")
    points: list[FitPoint] = meaning("the fit set: every few-shot run and every C of the logistic sweep")


@dataclass(frozen=True, kw_only=True)
class CurveCheck(Record):
    """Whether mixing zero-shot with a fitted head beats both on the shift (WiSE-FT's claim)."""

    curve: str = meaning("'wiseft_logreg' (zero-shot mixed with logreg) or 'wiseft_zsinit' (with the zsinit head)")
    best_alpha: float = meaning("the interior alpha (strictly between 0 and 1) with the best shift top-1")
    best_shift_top1: float = meaning("its shift top-1")
    ends_shift_top1: float = meaning("the better shift top-1 of alpha 0 and alpha 1")
    difference: Estimate = meaning("best interior shift top-1 minus the better end's, the best interior alpha "
                                   "chosen again on every resample")
    beats_both_ends: bool = meaning("the difference's interval lies above 0")


@dataclass(frozen=True, kw_only=True)
class ShiftMetrics(Record):
    """A model's classifiers, fitted on the source, scored on one shift set."""

    shift: str = meaning("the shift set's short name (its key under 'shifts' in the params)")
    source: str = meaning("the dataset the classifiers were fitted on ('of' of the shift's params entry)")
    num_images: int = meaning("the shift's test images (count)")
    num_source_images: int = meaning("the source's test images (count)")
    num_shift_classes: int = meaning("the shift's classes (count)")
    num_source_classes: int = meaning("the source's classes (count)")
    matched_source_classes: int = meaning("source classes some shift class matches: the logits' columns kept (count)")
    resamples: int = meaning("bootstrap resamples per interval (count)")
    confidence: float = meaning("coverage of every interval, 0-1")
    seed: int = meaning("seed of the source's resamples; the shift's use seed + 1")
    reference: str = meaning("name of the zero-shot classifier every drop is compared with: the chosen one")
    classifiers: list[ShiftRow] = meaning("every reported classifier, in the heads files' order")
    fit: LogitFit = meaning("the logit-axis line effective robustness is measured from")
    curves: list[CurveCheck] = meaning("one check per WiSE-FT curve")


@dataclass(frozen=True, kw_only=True)
class ShiftAlphaRow(Record):
    """A point of a WiSE-FT curve as DVC plots it."""

    curve: str = meaning("'wiseft_logreg' or 'wiseft_zsinit'")
    alpha: float = meaning("mixing weight: 0 zero-shot, 1 the fitted head")
    source_top1: float = meaning("top-1 on the source's test images")
    shift_top1: float = meaning("top-1 on the shift's test images")


FILES = (
    MetricsFile(path="metrics/models/<model>/<shift>/shift.json", stage="shift", record=ShiftMetrics,
                about="Every classifier fitted on the source, on one shift set: drop, effective robustness, WiSE-FT."),
    MetricsFile(path="metrics/models/<model>/<shift>/shift_alpha.json", stage="shift", record=ShiftAlphaRow,
                layout="rows", about="Both WiSE-FT curves on source and shift, one row per alpha."),
)
