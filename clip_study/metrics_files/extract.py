"""The file of the extract stage: the model whose image embeddings it wrote, and how fast it encoded."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class ExtractMetrics(Record):
    """One model's image encoding: the model, where and how it ran, and the speed measured in this run."""

    model: str = meaning("the model's short name (its key under params models)")
    checkpoint: str = meaning("the checkpoint loaded: a hub id or a local directory")
    family: str = meaning("the model family, e.g. hf_clip or hf_siglip")
    parameters: int = meaning("parameters of the whole model, text tower included (count)")
    embedding_dim: int = meaning("length of the image (and text) embeddings (count)")
    device: str = meaning("the torch device that encoded, e.g. cpu or cuda")
    precision: str = meaning("the precision it encoded in: fp32, fp16, bf16 or int8")
    engine: str = meaning("what ran the encoding: local or ray")
    images_encoded: int = meaning("images encoded in this run; 0 when every shard was already written (count)")
    seconds: float = meaning("wall time of this run's encoding, from the first batch to the last shard written, "
                             "in seconds (3 decimals): measured, differs between runs")
    images_per_second: float | None = meaning("images_encoded / seconds (1 decimal); null when nothing was "
                                              "encoded: measured, differs between runs")


FILES = (MetricsFile(path="metrics/models/<model>/extract.json", stage="extract", record=ExtractMetrics,
                     about="The model one extract run encoded the images with, and its measured speed."),)
