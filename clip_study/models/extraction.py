"""Image files to feature files, at scale: images are decoded and preprocessed in DataLoader workers
while the model encodes, and features go to resumable shards (``clip_study.data.shards``), so an
interrupted run loses at most one shard of work and memory stays flat."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from transformers import CLIPModel

from clip_study.data import shards
from clip_study.models import pixels
from clip_study.models.encoding import encode_batches, image_encoder
from clip_study.models.loading import model_fingerprint


def default_workers(device: torch.device, cores: int) -> int:
    """Decoding workers: on a GPU, enough to feed it; on a CPU the model needs every core, and
    preprocessing is about 5 % of a ViT-B/32 forward, so one worker only from 4 cores up."""
    if device.type == "cpu":
        return 0 if cores < 4 else 1
    return max(1, min(8, cores - 1))


def extract_features(model: CLIPModel, processor: Any, splits: dict[str, tuple[list[Path], np.ndarray]],
                     out: Path, precision: str, batch_size: int, workers: int, shard_size: int,
                     log: Callable[[str], None] = print) -> None:
    """Write ``out/<split>.npz`` (features and labels, see ``data.features``) for each split's image
    files, resuming from the shards in ``<out>.partial/`` that a stopped run left."""
    device = next(model.parameters()).device
    preprocess, preprocessing = pixels.preprocessor(processor)
    encode = image_encoder(model, precision)
    key = shards.settings_key(model=model_fingerprint(model), precision=precision,
                              preprocessing=preprocessing, processor=processor.to_dict())
    work = out.with_name(out.name + ".partial")
    plans = {split: shards.plan(split, paths, shard_size, key) for split, (paths, _) in splits.items()}
    shards.prune(work, [shard for plan in plans.values() for shard in plan])
    log(f"{torch.get_num_threads()} threads, {workers} workers, {precision}, {preprocessing} preprocessing, "
        f"batches of {batch_size} on {device}")
    for split, (paths, labels) in splits.items():
        plan = plans[split]
        todo = shards.missing(work, plan, model.config.projection_dim)
        if len(todo) < len(plan):
            log(f"resuming {split}: {len(plan) - len(todo)} of {len(plan)} shards already encoded")
        todo_paths = [path for shard in todo for path in paths[shard.start:shard.stop]]
        batches = pixels.pixel_batches(todo_paths, preprocess, batch_size, workers, device.type == "cuda")
        shards.write(work, todo, encode_batches(encode, batches, len(todo_paths), desc=f"extract {split}"))
        shards.assemble(work, plan, labels, model.config.projection_dim, out / f"{split}.npz")
    shards.remove(work)
