"""The files of the probe stage: the linear probe's headline epoch (chosen on validation), its final and
test-picked epochs, its learning curve, and the chosen epoch's predictions for the confusion plot."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Calibration, ClassificationScores, ConfusionRow, Scores


@dataclass(frozen=True, kw_only=True)
class FinalEpoch(Record):
    """The probe after its last epoch: the study's fixed budget."""

    epoch: int = meaning("the last epoch (1-based)")
    test: Scores = meaning("scores on the test images", inline=True)


@dataclass(frozen=True, kw_only=True)
class ProbeMetrics(Record):
    """A linear classifier (one nn.Linear, Adam) on the frozen train image embeddings."""

    num_classes: int = meaning("classes of the subset (count)")
    num_train_images: int = meaning("train images the reported run trains on (count)")
    num_test_images: int = meaning("test images (count)")
    epochs: int = meaning("epochs trained (count)")
    chosen_epoch: int = meaning("the first epoch with the best validation top-1, from a run without the validation "
                                "images (1-based): the headline")
    chosen_on: str = meaning("the validation images, in words, e.g. '784 validation images'")
    test: Scores = meaning("the chosen epoch's scores on the test images, from the run on all train images",
                           inline=True)
    final: FinalEpoch = meaning("the last epoch")
    oracle_epoch: int = meaning("the epoch with the best test top-1: picked on test, optimistic (1-based)")
    oracle_top1: float = meaning("its test top-1")
    calibration: Calibration = meaning("the chosen epoch's softmax probabilities, the temperature fitted on the "
                                       "validation run's scores")


@dataclass(frozen=True, kw_only=True)
class ProbeCurveRow(Record):
    """One epoch of the probe's learning curve."""

    epoch: int = meaning("the epoch (1-based)")
    train_loss: float = meaning("mean cross-entropy over the epoch's training images, in nats (6 decimals)")
    val_top1: float = meaning("validation top-1 of the run without the validation images, at this epoch")
    test: ClassificationScores = meaning("scores on the test images, of the run on all train images", inline=True)


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/probe.json", stage="probe", record=ProbeMetrics,
                about="The linear probe's headline (the epoch chosen on validation), final and test-picked epochs, "
                      "and calibration."),
    MetricsFile(path="metrics/models/<model>/<dataset>/probe_curve.json", stage="probe", record=ProbeCurveRow, layout="rows",
                about="The probe's learning curve, one row per epoch."),
    MetricsFile(path="metrics/models/<model>/<dataset>/confusion_probe.json", stage="probe", record=ConfusionRow,
                layout="rows", about="The chosen epoch's prediction for each test image."),
)
