"""The file of the similarity stage: the chosen zero-shot classifier scored by cosine similarity and by the raw
dot product, and the embedding norms that make them differ."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import PairedTest, Scores, Spread


@dataclass(frozen=True, kw_only=True)
class SimilarityResult(Record):
    """The classifier scored with one similarity."""

    test: Scores = meaning("scores on the test images", inline=True)
    predicted_classes: int = meaning("distinct classes it predicts for the test images (count)")


@dataclass(frozen=True, kw_only=True)
class DotProductResult(SimilarityResult):
    """The classifier scored with the raw dot product, compared with cosine."""

    vs_cosine: PairedTest = meaning("the dot product (A) against cosine (B) on the test images")


@dataclass(frozen=True, kw_only=True)
class SimilarityMetrics(Record):
    """Cosine similarity against the raw dot product of the unnormalised embeddings."""

    template: str = meaning("key of the zero-shot classifier compared: zeroshot.json's best")
    num_classes: int = meaning("classes of the subset (count)")
    cosine: SimilarityResult = meaning("scored by cosine similarity, as zero-shot scores")
    dot: DotProductResult = meaning("scored by the raw dot product")
    text_norms: Spread = meaning("L2 norms of the class text embeddings")
    image_norms: Spread = meaning("L2 norms of the test image embeddings")
    dot_predictions_vs_text_norm_corr: float = meaning(
        "Pearson correlation, -1 to 1, between a class's text norm and how many test images the dot product "
        "assigns to it (> 0: longer text vectors win more often; 0 when every class is predicted equally often)")


FILES = (MetricsFile(path="metrics/models/<model>/<dataset>/similarity.json", stage="similarity", record=SimilarityMetrics,
                     about="Cosine similarity against the raw dot product, with the zero-shot classifier chosen by "
                           "the zeroshot stage."),)
