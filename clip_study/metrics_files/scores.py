"""Parts that several metrics files share: test scores with their bootstrap intervals, paired tests,
calibration, spreads, means over seeded runs, and the rows of the confusion files.

Every score is a fraction of images (0-1) rounded to 6 decimals unless its meaning says otherwise; every
interval is a percentile bootstrap over the test images, stratified by class (its coverage in zeroshot.json's
``interval``).
"""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import Record, meaning

CLASSIFIERS = ("zeroshot", "probe", "logreg")
"""The classifiers whose test predictions the summary stage keeps, by key: compared with each other on the same
test images (within a model and between models), each with a confusion file."""


@dataclass(frozen=True, kw_only=True)
class ClassificationScores(Record):
    """One classifier's scores on the test images (``evaluation.metrics.classification_metrics``)."""

    top1: float = meaning("top-1 accuracy: the fraction of test images whose highest-scored class is right")
    top5: float = meaning("top-5 accuracy: the fraction whose right class is among the 5 highest-scored")
    macro_f1: float = meaning("F1 averaged over every class, one never predicted counting 0")
    mean_per_class_recall: float = meaning("recall averaged over the classes with test images (balanced accuracy)")


@dataclass(frozen=True, kw_only=True)
class Top1Interval(Record):
    """A top-1 with its bootstrap interval: what the summary and the leaderboard compare."""

    top1: float = meaning("test top-1 (of a curve point: the mean over its runs)")
    top1_low: float = meaning("lower bound of its bootstrap interval")
    top1_high: float = meaning("upper bound of its bootstrap interval")


@dataclass(frozen=True, kw_only=True)
class Scores(ClassificationScores):
    """Test scores with the bootstrap intervals of top-1 and macro-F1 (``evaluation.metrics.scored``)."""

    top1_low: float = meaning("lower bound of top1's bootstrap interval")
    top1_high: float = meaning("upper bound of top1's bootstrap interval")
    macro_f1_low: float = meaning("lower bound of macro_f1's bootstrap interval")
    macro_f1_high: float = meaning("upper bound of macro_f1's bootstrap interval")

    def top1_interval(self) -> Top1Interval:
        return Top1Interval(top1=self.top1, top1_low=self.top1_low, top1_high=self.top1_high)


@dataclass(frozen=True, kw_only=True)
class PairedTest(Record):
    """McNemar's exact test of two classifiers, A then B, on the same test images
    (``evaluation.intervals.compared``)."""

    a_only: int = meaning("test images A gets right and B wrong (count)")
    b_only: int = meaning("test images B gets right and A wrong (count)")
    p_value: float = meaning("two-sided exact p-value, 0-1 (1 when no image tells them apart)")
    verdict: str = meaning("A against B in words at the 5 % level: 'better, p = ...', 'worse, p = ...' or "
                           "'not distinguishable at N test images (p = ...)'")


@dataclass(frozen=True, kw_only=True)
class CalibrationScores(Record):
    """How far predicted probabilities can be trusted, on the test images."""

    ece: float = meaning("expected calibration error: |accuracy - confidence| averaged over the confidence bins, "
                         "weighted by their images, 0-1")
    nll: float = meaning("mean negative log-likelihood of the true class, in nats (probabilities clipped at 1e-12)")
    brier: float = meaning("Brier score: mean squared distance between the probabilities and the one-hot true "
                           "class, 0-2")


@dataclass(frozen=True, kw_only=True)
class ReliabilityBin(Record):
    """One non-empty confidence bin of a reliability diagram."""

    lower: float = meaning("lower confidence bound, exclusive (the first bin takes 0 too), 0-1")
    upper: float = meaning("upper confidence bound, inclusive, 0-1")
    count: float = meaning("test images in the bin (a whole number, written as a float)")
    confidence: float = meaning("their mean confidence (top probability), 0-1")
    accuracy: float = meaning("the fraction of them classified right")


@dataclass(frozen=True, kw_only=True)
class Calibration(Record):
    """Calibration before and after temperature scaling (``evaluation.calibration.calibration_report``)."""

    temperature: float = meaning("temperature T fitted on held-out images (never test) to minimise the NLL of "
                                 "softmax(logits / T); 1 leaves the probabilities as they are")
    bins: int = meaning("equal-width confidence bins on [0, 1] (count)")
    before: CalibrationScores = meaning("the probabilities as predicted")
    after: CalibrationScores = meaning("the probabilities after temperature scaling")
    reliability_before: list[ReliabilityBin] = meaning("the non-empty bins before scaling")
    reliability_after: list[ReliabilityBin] = meaning("the non-empty bins after scaling")


@dataclass(frozen=True, kw_only=True)
class Spread(Record):
    """Summary statistics of a set of values, in the values' unit (``evaluation.metrics.spread``)."""

    min: float = meaning("the smallest value")
    max: float = meaning("the largest value")
    mean: float = meaning("the mean")
    std: float = meaning("the standard deviation (population)")


@dataclass(frozen=True, kw_only=True)
class Shots(Record):
    """A point of a few-shot curve: how many labelled images per class, in how many seeded runs."""

    k: int = meaning("labelled train images per class (for 'all': the largest class's count)")
    label: str = meaning("k as text, or 'all': every train image, one run")
    runs: int = meaning("seeded runs, each drawing its own k images per class (count)")


@dataclass(frozen=True, kw_only=True)
class RunsTop1(Record):
    """Test top-1 over seeded runs of one classifier, with the bootstrap interval of the mean over runs."""

    mean_top1: float = meaning("test top-1 averaged over the runs")
    std_top1: float = meaning("its standard deviation over the runs (population)")
    min_top1: float = meaning("the lowest run's test top-1")
    max_top1: float = meaning("the highest run's test top-1")
    top1_low: float = meaning("lower bound of the bootstrap interval of mean_top1 (the test images' share of the "
                              "noise)")
    top1_high: float = meaning("upper bound of the bootstrap interval of mean_top1")

    def mean_interval(self) -> Top1Interval:
        return Top1Interval(top1=self.mean_top1, top1_low=self.top1_low, top1_high=self.top1_high)


@dataclass(frozen=True, kw_only=True)
class ConfusionRow(Record):
    """One test image of a confusion file (DVC's ``template: confusion`` plot reads these rows)."""

    actual: str = meaning("the name of the image's class")
    predicted: str = meaning("the name of the class the classifier predicted")


@dataclass(frozen=True, kw_only=True)
class IntervalSettings(Record):
    """How every bootstrap interval of the model's study is drawn (the evaluation params)."""

    confidence: float = meaning("coverage of the intervals, 0-1 (0.95: the 2.5th to the 97.5th percentile)")
    resamples: int = meaning("bootstrap resamples of the test images (count)")
    stratified_by: str = meaning("what every resample keeps: 'class', each class's count of test images; 'image' "
                                 "(retrieval): images drawn with replacement, each with every caption it has")


@dataclass(frozen=True, kw_only=True)
class Estimate(Record):
    """A number on all the test images with its percentile bootstrap interval (shift: paired, every classifier
    scored on the same resamples of the source and of the shift, drawn with the seeds the stage's docstring gives;
    retrieval: over images, each with its captions)."""

    value: float = meaning("the statistic on all the test images, in the unit its field gives (6 decimals)")
    low: float = meaning("lower bound of its bootstrap interval")
    high: float = meaning("upper bound of its bootstrap interval")
