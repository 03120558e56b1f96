"""The files of the logreg stage: the CLIP paper's logistic-regression probe, its C sweep on validation, and its
predictions for the confusion plot."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Calibration, ConfusionRow, Scores


@dataclass(frozen=True, kw_only=True)
class LogregMetrics(Record):
    """L-BFGS logistic regression on the L2-normalised train embeddings, C chosen on a validation split."""

    num_classes: int = meaning("classes of the subset (count)")
    num_train_images: int = meaning("train images of the refit at the chosen C (count)")
    num_test_images: int = meaning("test images (count)")
    C: float = meaning("the inverse L2 regularisation strength chosen by the sweep (scikit-learn's C: larger is "
                       "weaker), full precision")
    val_top1: float = meaning("the sweep's validation top-1 at C")
    test: Scores = meaning("scores on the test images of the probe refitted on all train images at C", inline=True)
    calibration: Calibration = meaning("its softmax probabilities, the temperature fitted on the validation scores "
                                       "of the sweep's fit at C")


@dataclass(frozen=True, kw_only=True)
class SweepRow(Record):
    """One C of the sweep."""

    C: float = meaning("the inverse regularisation strength tried, full precision")
    log10_C: float = meaning("its base-10 logarithm (6 decimals)")
    val_top1: float = meaning("validation top-1 of the probe fitted on train minus the validation split")


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/logreg.json", stage="logreg", record=LogregMetrics,
                about="The logistic-regression probe at the C chosen on validation, and its calibration."),
    MetricsFile(path="metrics/models/<model>/<dataset>/logreg_sweep.json", stage="logreg", record=SweepRow, layout="rows",
                about="The C sweep, one row per C, log-spaced."),
    MetricsFile(path="metrics/models/<model>/<dataset>/confusion_logreg.json", stage="logreg", record=ConfusionRow,
                layout="rows", about="The probe's prediction for each test image."),
)
