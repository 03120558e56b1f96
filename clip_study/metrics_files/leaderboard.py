"""The file of the leaderboard stage: every model side by side, and each compared with the leader on the same
test images."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import PairedTest, Top1Interval

FEWSHOT_K = "16"
"""The few-shot point of the leaderboard (the CLIP paper's 16 images per class): LeaderboardRow.fewshot_16."""


@dataclass(frozen=True, kw_only=True)
class ChosenTemplate(Record):
    """The best single template, chosen on the train images as zeroshot chooses."""

    key: str = meaning("its key in zeroshot.json's templates")
    template: str = meaning("the template")
    test: Top1Interval = meaning("its test top-1", inline=True)


@dataclass(frozen=True, kw_only=True)
class ChosenClassifier(Record):
    """The zero-shot classifier zeroshot chose on the train images (a template or an ensemble)."""

    key: str = meaning("its key: zeroshot.json's best")
    test: Top1Interval = meaning("its test top-1", inline=True)


@dataclass(frozen=True, kw_only=True)
class LeaderboardRow(Record):
    """One model, from its stages' metrics files."""

    model: str = meaning("the model's short name (its key under params models)")
    checkpoint: str = meaning("its checkpoint: a hub id or a local directory")
    family: str = meaning("its family, e.g. hf_clip or hf_siglip")
    parameters: int = meaning("parameters of the whole model (count)")
    device: str = meaning("the device extract encoded on")
    zeroshot_template: ChosenTemplate = meaning("the best single template")
    zeroshot_ensembles: dict[str, Top1Interval] = meaning("each prompt ensemble's test top-1",
                                                          keyed_by="ensemble key")
    zeroshot: ChosenClassifier = meaning("the zero-shot classifier chosen on the train images")
    probe: Top1Interval = meaning("the linear probe at the epoch chosen on validation")
    logreg: Top1Interval = meaning("the logistic-regression probe")
    fewshot_16: Top1Interval | None = meaning("the few-shot logistic probe at 16 images per class (mean over "
                                              "runs); null when the curve has no k = 16")
    zeroshot_ece: float = meaning("the chosen zero-shot classifier's test ECE before temperature scaling")

    def top1(self, classifier: str) -> Top1Interval:
        """The test top-1 of a classifier by its key (one of scores.CLASSIFIERS)."""
        return {"zeroshot": self.zeroshot.test, "probe": self.probe, "logreg": self.logreg}[classifier]


@dataclass(frozen=True, kw_only=True)
class ModelComparison(Record):
    """A model (A) against the leader (B), classifier by classifier, on the same test images."""

    zeroshot: PairedTest = meaning("their chosen zero-shot classifiers")
    probe: PairedTest = meaning("their linear probes")
    logreg: PairedTest = meaning("their logistic probes")

    def test(self, classifier: str) -> PairedTest:
        """The test of a classifier by its key (one of scores.CLASSIFIERS)."""
        return {"zeroshot": self.zeroshot, "probe": self.probe, "logreg": self.logreg}[classifier]


@dataclass(frozen=True, kw_only=True)
class Leaderboard(Record):
    """Every model of the params side by side."""

    num_classes: int = meaning("classes of the subset, the same for every model (count)")
    num_test_images: int = meaning("test images, the same for every model (count)")
    leader: str = meaning("the model with the best zero-shot test top-1 (each model's classifier chosen on its "
                          "train images)")
    models: list[LeaderboardRow] = meaning("one row per model, in the params' order")
    vs_leader: dict[str, ModelComparison] = meaning("every other model against the leader", keyed_by="model")


FILES = (MetricsFile(path="metrics/leaderboard.json", stage="leaderboard", record=Leaderboard,
                     about="Every model side by side, each compared with the leader on the same test images."),)
