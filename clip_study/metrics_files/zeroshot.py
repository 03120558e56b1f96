"""The files of the zeroshot stage: every template and prompt ensemble scored on the test images, the one
chosen on the train images, its calibration, and its predictions for the confusion plot."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Calibration, ConfusionRow, IntervalSettings, PairedTest, Scores


@dataclass(frozen=True, kw_only=True)
class ZeroshotScores(Record):
    """One zero-shot classifier (cosine similarity to its class text embeddings) scored."""

    choice_top1: float = meaning("top-1 on the train images, which choose the classifier (zero-shot never learns "
                                 "from them)")
    test: Scores = meaning("scores on the test images", inline=True)
    vs_chosen: PairedTest | None = meaning("this classifier (A) against the chosen one (B) on the test images; "
                                           "null for the chosen one")


@dataclass(frozen=True, kw_only=True)
class TemplateResult(Record):
    """A single template's classifier."""

    template: str = meaning("the template, '{}' where the class name goes")
    scores: ZeroshotScores = meaning("how it scores", inline=True)


@dataclass(frozen=True, kw_only=True)
class EnsembleResult(Record):
    """A prompt ensemble's classifier: the mean of several prompts' normalised embeddings per class."""

    num_templates: int | None = meaning("templates averaged (count); null for prompts written per class")
    source: str = meaning("where the prompts come from: a template file, 'inline' (listed in params), or the "
                          "per-class prompts file")
    scores: ZeroshotScores = meaning("how it scores", inline=True)


@dataclass(frozen=True, kw_only=True)
class ZeroshotMetrics(Record):
    """Zero-shot classification of the test images with every template and ensemble of the params."""

    num_classes: int = meaning("classes of the subset (count)")
    num_test_images: int = meaning("test images (count)")
    chance_top1: float = meaning("1 / num_classes: the top-1 of guessing")
    model: str = meaning("the model's short name (its key under params models)")
    logit_scale: float = meaning("the model's learned scale from cosine similarity to logits (6 decimals)")
    logit_bias: float = meaning("the model's learned logit bias: SigLIP's, 0 for CLIP (6 decimals)")
    model_probabilities: str = meaning("how the model turns its logits into probabilities: softmax (CLIP) or "
                                       "sigmoid (SigLIP); calibration uses the softmax over the classes")
    chosen_on: str = meaning("the images the classifier is chosen on, in words, e.g. '3920 train images'")
    interval: IntervalSettings = meaning("how the bootstrap intervals are drawn")
    best: str = meaning("key of the classifier chosen on the train images (a template's or an ensemble's): "
                        "the headline")
    best_kind: str = meaning("'template' or 'ensemble': where best's result is")
    best_template: str = meaning("the chosen template, or the chosen ensemble's key")
    best_top1: float = meaning("the chosen classifier's test top-1")
    best_top1_low: float = meaning("lower bound of its bootstrap interval")
    best_top1_high: float = meaning("upper bound of its bootstrap interval")
    oracle: str = meaning("key of the classifier with the best test top-1: picked on test, optimistic")
    oracle_top1: float = meaning("its test top-1")
    templates: dict[str, TemplateResult] = meaning("each template's classifier", keyed_by="template key")
    ensembles: dict[str, EnsembleResult] | None = meaning("each ensemble's classifier (class_prompts: the per-class "
                                                          "prompts)", optional=True, keyed_by="ensemble key")
    calibration: Calibration = meaning("the chosen classifier's probabilities (softmax over the classes of logit "
                                       "scale x cosine + bias), the temperature fitted on the train images")

    def results(self) -> dict[str, ZeroshotScores]:
        """Every classifier's scores by key: the templates', then the ensembles'."""
        ensembles = self.ensembles or {}
        return {**{key: t.scores for key, t in self.templates.items()},
                **{key: e.scores for key, e in ensembles.items()}}


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/zeroshot.json", stage="zeroshot", record=ZeroshotMetrics,
                about="Zero-shot top-1 of every template and ensemble with intervals, the classifier chosen on the "
                      "train images, and its calibration."),
    MetricsFile(path="metrics/models/<model>/<dataset>/confusion_zeroshot.json", stage="zeroshot", record=ConfusionRow,
                layout="rows", about="The chosen zero-shot classifier's prediction for each test image."),
)
