"""Image files to feature files, at scale: images are decoded and preprocessed in DataLoader workers
while the model encodes (on a GPU, with copies to the device overlapped with its work), and features go
to resumable shards (``clip_study.data.shards``), so an interrupted run loses at most one shard of work
and memory stays flat."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from clip_study.data import shards
from clip_study.models import pixels
from clip_study.models.encoding import encode_batches, prepare_run
from clip_study.models.families import embedding_dim
from clip_study.models.loading import model_fingerprint


def default_workers(device: torch.device, cores: int) -> int:
    """Decoding workers: on a GPU, every core but the one feeding it (up to 32), as decoding and resizing
    are what bounds a GPU's rate; on a CPU the model needs every core, and preprocessing is about 5 % of a
    ViT-B/32 forward, so one worker only from 4 cores up."""
    if device.type == "cpu":
        return 0 if cores < 4 else 1
    return max(1, min(32, cores - 1))


def extract_features(model: Any, processor: Any, splits: dict[str, tuple[list[Path], np.ndarray]],
                     out: Path, precision: str, batch_size: int, workers: int, shard_size: int,
                     log: Callable[[str], None] = print) -> tuple[int, float]:
    """Write ``out/<split>.npz`` (features and labels, see ``data.features``) for each split's image
    files, resuming from the shards in ``<out>.partial/`` that a stopped run left. One set of workers
    decodes every split in turn, so the model never waits for workers to start. Returns the number of
    images this run encoded and the seconds it took (from the first batch asked for to the last written)."""
    device = next(model.parameters()).device
    first_paths = next((paths for paths, _ in splits.values() if paths), [])
    preprocessing, encode = prepare_run(model, processor, first_paths, precision, log)
    key = shards.settings_key(model=model_fingerprint(encode.tower),  # the image tower: what image features read precision=precision, encoder=encode.mode,
                              preprocessing=preprocessing.name, processor=processor.to_dict())
    work = out.with_name(out.name + ".partial")
    plans = {split: shards.plan(split, paths, shard_size, key) for split, (paths, _) in splits.items()}
    shards.prune(work, [shard for plan in plans.values() for shard in plan])
    log(f"{torch.get_num_threads()} threads, {workers} workers, {encode.mode}, {preprocessing.name} preprocessing, "
        f"batches of {batch_size} on {device}")
    todo = {split: shards.missing(work, plans[split], embedding_dim(model)) for split in splits}
    todo_paths = {split: [path for shard in todo[split] for path in splits[split][0][shard.start:shard.stop]]
                  for split in splits}
    for split in splits:
        if len(todo[split]) < len(plans[split]):
            log(f"resuming {split}: {len(plans[split]) - len(todo[split])} of {len(plans[split])} shards already "
                "encoded")
    loader = pixels.pixel_batches([path for paths in todo_paths.values() for path in paths], preprocessing.in_worker,
                                  batch_size, workers, device.type == "cuda",
                                  group_sizes=[len(paths) for paths in todo_paths.values()])
    batches = pixels.to_device_ahead(loader, device)
    start = time.perf_counter()
    for split, (_, labels) in splits.items():
        count = len(todo_paths[split])
        split_batches = itertools.islice(batches, -(-count // batch_size))
        shards.write(work, todo[split], encode_batches(encode, split_batches, count, desc=f"extract {split}"))
        shards.assemble(work, plans[split], labels, embedding_dim(model), out / f"{split}.npz")
    seconds = time.perf_counter() - start
    shards.remove(work)
    return sum(len(paths) for paths in todo_paths.values()), seconds
