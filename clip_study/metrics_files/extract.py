"""The files of the extract stage: the model whose image embeddings it wrote (tracked), and the speed one run
measured (a log that nothing tracks, since it differs between runs)."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class ExtractMetrics(Record):
    """One model's image encoding: the model, and where and how it ran. Only what a rerun reproduces: the
    measured speed is in the speed log (ExtractSpeed)."""

    model: str = meaning("the model's short name (its key under params models)")
    checkpoint: str = meaning("the checkpoint loaded: a hub id or a local directory")
    family: str = meaning("the model family, e.g. hf_clip or hf_siglip")
    parameters: int = meaning("parameters of the whole model, text tower included (count)")
    embedding_dim: int = meaning("length of the image (and text) embeddings (count)")
    device: str = meaning("the torch device that encoded, e.g. cpu or cuda")
    precision: str = meaning("the precision it encoded in: fp32, fp16, bf16 or int8")
    engine: str = meaning("what ran the encoding: local or ray")
    images: int = meaning("train and test images whose features the stage wrote, resumed shards included (count)")


@dataclass(frozen=True, kw_only=True)
class ExtractSpeed(Record):
    """The encoding speed one extract run measured, and the machine it ran on."""

    model: str = meaning("the model's short name (its key under params models)")
    checkpoint: str = meaning("the checkpoint loaded: a hub id or a local directory")
    images_encoded: int = meaning("images this run encoded; fewer than extract.json's images when it resumed "
                                  "from shards, 0 when every shard was already written (count)")
    seconds: float = meaning("wall time of this run's encoding, from the first batch to the last shard written, "
                             "in seconds (3 decimals)")
    images_per_second: float | None = meaning("images_encoded / seconds (1 decimal); null when nothing was encoded")
    device: str = meaning("the torch device that encoded, e.g. cpu or cuda")
    gpu: str | None = meaning("the GPU's name on cuda; null on any other device")
    precision: str = meaning("the precision it encoded in: fp32, fp16, bf16 or int8")
    engine: str = meaning("what ran the encoding: local or ray")
    threads: int = meaning("torch threads of the process that loaded the model (count)")
    workers: int = meaning("image decoding processes of the local engine (count)")
    batch_size: int = meaning("images per batch (count)")
    platform: str = meaning("the operating system and machine, as Python's platform.platform() says")
    torch: str = meaning("the torch version")
    cpu: str = meaning("the CPU's model name (the machine type where the system does not say)")
    cores: int = meaning("CPU cores this process could use (count)")
    measured: str = meaning("when the run finished encoding: UTC, ISO 8601, to the second")


FILES = (MetricsFile(path="metrics/models/<model>/<dataset>/extract.json", stage="extract", record=ExtractMetrics,
                     about="The model one extract run encoded the images with, and how."),
         MetricsFile(path="metrics/models/<model>/<shift>/extract.json", stage="extract", record=ExtractMetrics,
                     about="The same for a shift set's test images (the extract_shift stage runs extract on them)."),
         MetricsFile(path="metrics/models/<model>/<captions>/extract.json", stage="extract", record=ExtractMetrics,
                     about="The same for a caption dataset's images (the extract_captions stage runs extract on "
                           "them)."))

LOGS = (MetricsFile(path="data/speed/<model>/<dataset>.json", stage="extract", record=ExtractSpeed,
                    about="The speed one extract run measured and the machine it ran on; tracked by neither DVC "
                          "nor git (git ignores it), since it differs between runs. Each run overwrites it; "
                          "for timing, run `python -m bench.benchmark` ([performance.md](performance.md))."),)
"""Files a stage writes that no pipeline declares: docs/metrics.md lists them after the metrics files."""
