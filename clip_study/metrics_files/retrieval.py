"""The file of the retrieval stage: recall@k both ways on a caption dataset, every caption of an image a right
answer, with mean and median rank and bootstrap intervals (images resampled, each with all its captions)."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import Estimate, IntervalSettings


@dataclass(frozen=True, kw_only=True)
class Direction(Record):
    """One direction of retrieval: its queries, each looking for its right results among all the other side's."""

    queries: int = meaning("queries: one per image (image_to_text) or one per caption (text_to_image) (count)")
    benchmark_name: str = meaning("CLIP_benchmark's name of this direction, whose metrics are '<name>_recall@<k>': "
                                  "'text_retrieval' for image_to_text, 'image_retrieval' for text_to_image")
    recall: dict[str, Estimate] = meaning("fraction of queries with a right result among the first k: any caption of "
                                          "the image for an image query, the caption's image for a caption query",
                                          keyed_by="recall@<k>")
    mean_rank: Estimate = meaning("mean rank of the first right result (1: first), ties broken by index order")
    median_rank: float = meaning("median rank of the first right result")


@dataclass(frozen=True, kw_only=True)
class RetrievalMetrics(Record):
    """Zero-shot retrieval by one model on one caption dataset: cosine similarity of image and caption embeddings."""

    model: str = meaning("the model's short name")
    caption_set: str = meaning("the caption dataset's short name")
    template: str | None = meaning("the text around each caption, '{}' where it goes (null: the captions as given)")
    images: int = meaning("images of the caption dataset's subset (count)")
    captions: int = meaning("captions of those images, every one a query (count)")
    image_to_text: Direction = meaning("each image a query for its captions")
    text_to_image: Direction = meaning("each caption a query for its image")
    intervals: IntervalSettings = meaning("how the intervals are drawn: images resampled, each with every caption "
                                          "it has ('stratified_by': 'image')")


FILES = (MetricsFile(path="metrics/models/<model>/<captions>/retrieval.json", stage="retrieval",
                     record=RetrievalMetrics,
                     about="Recall@k image to text and text to image, mean and median rank, with intervals."),)
