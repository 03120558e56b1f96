"""The file of the leaderboard stage: every model on every dataset side by side, each model's mean top-1 over the
datasets and its average rank with paired bootstrap intervals, on each dataset every model compared with that
dataset's leader on the same test images, and, for a dataset with shift sets, its headline classifiers on their
average (the CLIP paper's robustness question); for each caption set, every model's retrieval both ways against the
leader of each direction and recall@k."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.retrieval import Direction
from clip_study.metrics_files.scores import Estimate, IntervalSettings, PairedTest, Top1Interval
from clip_study.metrics_files.shift import CurveCheck, DropComparison, LogitFit, ShiftAlphaRow

FEWSHOT_K = "16"
"""The few-shot point of the leaderboard (the CLIP paper's 16 images per class): PairRow.fewshot_16."""


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
class PairRow(Record):
    """One model on one dataset, from the pair's metrics files (metrics/models/<model>/<dataset>/)."""

    device: str = meaning("the device extract encoded the dataset's images on")
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
class AcrossDatasets(Record):
    """One classifier of one model over every dataset (``evaluation.ranking.across_datasets``); each interval a
    percentile bootstrap whose every draw resamples each dataset's test images within each class, the same draw
    for every model."""

    mean_top1: float = meaning("test top-1 averaged over the datasets, each dataset weighing the same")
    mean_top1_low: float = meaning("lower bound of its paired bootstrap interval")
    mean_top1_high: float = meaning("upper bound of its paired bootstrap interval")
    average_rank: float = meaning("the model's rank on each dataset's test top-1 (1: the best; ties share the "
                                  "mean of their ranks), averaged over the datasets: CLIP_benchmark's headline")
    average_rank_low: float = meaning("lower bound of its paired bootstrap interval")
    average_rank_high: float = meaning("upper bound of its paired bootstrap interval")

    def mean_interval(self) -> Top1Interval:
        return Top1Interval(top1=self.mean_top1, top1_low=self.mean_top1_low, top1_high=self.mean_top1_high)


@dataclass(frozen=True, kw_only=True)
class ClassifiersAcrossDatasets(Record):
    """A model's three classifiers over every dataset."""

    zeroshot: AcrossDatasets = meaning("the zero-shot classifiers chosen on each dataset's train images")
    probe: AcrossDatasets = meaning("the linear probes")
    logreg: AcrossDatasets = meaning("the logistic probes")

    def of(self, classifier: str) -> AcrossDatasets:
        """A classifier's entry by its key (one of scores.CLASSIFIERS)."""
        return {"zeroshot": self.zeroshot, "probe": self.probe, "logreg": self.logreg}[classifier]


@dataclass(frozen=True, kw_only=True)
class LeaderboardModel(Record):
    """One model: what it is, its row on each dataset, and its standing over all of them."""

    model: str = meaning("the model's short name (its key under params models)")
    checkpoint: str = meaning("its checkpoint: a hub id or a local directory")
    family: str = meaning("its family, e.g. hf_clip or hf_siglip")
    parameters: int = meaning("parameters of the whole model (count)")
    datasets: dict[str, PairRow] = meaning("the model on each dataset, in the params' order", keyed_by="dataset")
    across_datasets: ClassifiersAcrossDatasets = meaning("mean top-1 and average rank over the datasets")


@dataclass(frozen=True, kw_only=True)
class ModelComparison(Record):
    """A model (A) against a dataset's leader (B), classifier by classifier, on the dataset's test images."""

    zeroshot: PairedTest = meaning("their chosen zero-shot classifiers")
    probe: PairedTest = meaning("their linear probes")
    logreg: PairedTest = meaning("their logistic probes")

    def test(self, classifier: str) -> PairedTest:
        """The test of a classifier by its key (one of scores.CLASSIFIERS)."""
        return {"zeroshot": self.zeroshot, "probe": self.probe, "logreg": self.logreg}[classifier]


@dataclass(frozen=True, kw_only=True)
class DatasetBoard(Record):
    """One dataset: its test set, its leader and every other model against it."""

    num_classes: int = meaning("classes of the dataset's subset, the same for every model (count)")
    num_test_images: int = meaning("test images, the same for every model (count)")
    leader: str = meaning("the model with the best zero-shot test top-1 on this dataset (each model's classifier "
                          "chosen on its train images; the first in the params' order on a tie)")
    vs_leader: dict[str, ModelComparison] = meaning("every other model against the leader (McNemar's exact test)",
                                                    keyed_by="model")


@dataclass(frozen=True, kw_only=True)
class PairedBootstrap(Record):
    """How the intervals over the datasets are drawn (the evaluation params)."""

    resamples: int = meaning("bootstrap draws; each resamples every dataset's test images (count)")
    confidence: float = meaning("coverage of the intervals, 0-1")
    seed: int = meaning("seed of the first dataset's draws; dataset d (0-based, params order) draws with seed + d")


@dataclass(frozen=True, kw_only=True)
class Leaderboard(Record):
    """Every model of the params on every dataset of the params."""

    leader: str = meaning("the model with the best zero-shot average rank (the higher mean zero-shot top-1 on a "
                          "tie)")
    interval: PairedBootstrap = meaning("how the intervals over the datasets are drawn")
    models: list[LeaderboardModel] = meaning("one entry per model, in the params' order")
    datasets: dict[str, DatasetBoard] = meaning("each dataset's test set and paired tests, in the params' order",
                                                keyed_by="dataset")
    shift: dict[str, ShiftBoard] | None = meaning("each dataset with shift sets (params 'shifts'), in the params' "
                                                  "order: its classifiers on their average; absent without shift "
                                                  "sets", optional=True, keyed_by="dataset")
    retrieval: dict[str, RetrievalBoard] | None = meaning("each caption set (params 'captions'), in the params' "
                                                          "order: every model's retrieval both ways; absent without "
                                                          "caption sets", optional=True, keyed_by="caption set")


HEADLINES = ("zeroshot", "probe", "logreg", "zsinit_mix", "wiseft_logreg", "wiseft_zsinit")
"""The classifiers of the shift average, by role: the chosen zero-shot, the linear and logistic probes, the zsinit
mix at k = all, and each WiSE-FT curve at its alpha chosen on validation (ModelShift.classifiers)."""


@dataclass(frozen=True, kw_only=True)
class ShiftHeadline(Record):
    """One headline classifier of a model, fitted on a dataset, on the average over that dataset's shift sets."""

    name: str = meaning("its row in shift.json: 'zeroshot/<key>', 'probe', 'logreg', 'zsinit_mix/k=all', "
                        "'wiseft_logreg/alpha=<a>' or 'wiseft_zsinit/alpha=<a>'")
    alpha: float | None = meaning("mixing weight of a WiSE-FT row: 0 zero-shot, 1 the fitted head", optional=True)
    source: Estimate = meaning("top-1 on the dataset's test images")
    shift: Estimate = meaning("top-1 averaged over the shift sets, each set weighing the same")
    drop: Estimate = meaning("source top-1 minus the shift average: the accuracy lost to the shift")
    effective_robustness: Estimate = meaning("the shift average above the fit's prediction from source top-1; its "
                                             "interval refits the line on every resample")
    drop_vs_zero_shot: DropComparison = meaning("drop minus the chosen zero-shot classifier's drop (positive: loses "
                                                "more than zero-shot)")
    shift_sets: dict[str, float] = meaning("top-1 on each shift set alone (its shift.json)", keyed_by="shift set")


@dataclass(frozen=True, kw_only=True)
class ModelShift(Record):
    """One model's classifiers fitted on a dataset, scored on the average over its shift sets: ``evaluate_shift``
    over all of them at once, every classifier on the same resamples (the dataset's drawn with the evaluation seed,
    shift set j's, params order from 0, with seed + 1 + j)."""

    reference: str = meaning("the chosen zero-shot classifier every drop is compared with")
    classifiers: dict[str, ShiftHeadline] = meaning("the headline classifiers the pair has, by role, in this order: "
                                                    "zeroshot (the chosen one), probe, logreg, zsinit_mix (k = all), "
                                                    "wiseft_logreg, wiseft_zsinit (each at its chosen alpha)",
                                                    keyed_by="role")
    fit: LogitFit = meaning("the logit-axis line through the probes fitted on the dataset alone, on the shift "
                            "average (shift_clip: half an image of all the shift sets together)")
    curves: list[CurveCheck] = meaning("each WiSE-FT curve: does an interior alpha beat both ends on the shift "
                                       "average")
    alpha_curves: list[ShiftAlphaRow] = meaning("every point of both WiSE-FT curves, shift_top1 the shift average")


@dataclass(frozen=True, kw_only=True)
class ShiftBoard(Record):
    """A dataset with shift sets: what was averaged, and every model on the average."""

    shift_sets: dict[str, int] = meaning("each shift set of the dataset, params order, with its test images (count)",
                                         keyed_by="shift set")
    num_source_images: int = meaning("the dataset's test images (count)")
    models: dict[str, ModelShift] = meaning("every model, in the params' order", keyed_by="model")


@dataclass(frozen=True, kw_only=True)
class RecallComparison(Record):
    """A model's recall@k minus the leader's at that k, on the same bootstrap draws of the caption set's images (each
    drawn with all its captions)."""

    difference: float = meaning("this model's recall@k minus the leader's (fraction of queries; negative: behind)")
    low: float = meaning("lower bound of its paired bootstrap interval")
    high: float = meaning("upper bound of its paired bootstrap interval")
    p_value: float = meaning("two-sided paired bootstrap p-value of 'the recalls are equal'")


@dataclass(frozen=True, kw_only=True)
class VersusLeader(Record):
    """A model against the leader of each direction and recall@k; a k this model leads is absent."""

    image_to_text: dict[str, RecallComparison] = meaning("image to text, against each k's leader; a k this model "
                                                         "leads is absent", keyed_by="recall@<k>")
    text_to_image: dict[str, RecallComparison] = meaning("text to image, against each k's leader; a k this model "
                                                         "leads is absent", keyed_by="recall@<k>")


@dataclass(frozen=True, kw_only=True)
class RetrievalLeaders(Record):
    """The leader of each direction and recall@k: the model with the highest recall (the first in the params' order
    on a tie)."""

    image_to_text: dict[str, str] = meaning("image to text: each k's leader (a model's short name)",
                                            keyed_by="recall@<k>")
    text_to_image: dict[str, str] = meaning("text to image: each k's leader (a model's short name)",
                                            keyed_by="recall@<k>")


@dataclass(frozen=True, kw_only=True)
class ModelRetrieval(Record):
    """One model on one caption set: its retrieval.json both ways, and each (direction, recall@k) against its
    leader."""

    image_to_text: Direction = meaning("each image a query for its captions (the model's retrieval.json)")
    text_to_image: Direction = meaning("each caption a query for its image (the model's retrieval.json)")
    vs_leader: VersusLeader = meaning("this model minus the leader of each direction and recall@k, on the same "
                                      "draws of the images (the leaderboard's interval settings)")


@dataclass(frozen=True, kw_only=True)
class RetrievalBoard(Record):
    """A caption set: what every model retrieved from, the leaders, and every model."""

    template: str | None = meaning("the text around each caption, '{}' where it goes (null: the captions as given)")
    images: int = meaning("images of the caption set's subset, the same for every model (count)")
    captions: int = meaning("captions of those images, the same for every model (count)")
    intervals: IntervalSettings = meaning("how each retrieval.json's intervals are drawn (images resampled, each "
                                          "with every caption it has)")
    leaders: RetrievalLeaders = meaning("the leader of each direction and recall@k")
    models: dict[str, ModelRetrieval] = meaning("every model, in the params' order", keyed_by="model")


FILES = (MetricsFile(path="metrics/leaderboard.json", stage="leaderboard", record=Leaderboard,
                     about="Every model on every dataset side by side: mean top-1 and average rank over the "
                           "datasets with paired bootstrap intervals, each dataset's paired tests against its "
                           "leader, the headline classifiers on each dataset's shift average, and every model's "
                           "retrieval on each caption set against the leaders."),)
