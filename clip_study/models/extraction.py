"""Image files to feature files, at scale: images are decoded and preprocessed in DataLoader workers
while the model encodes (on a GPU, with copies to the device overlapped with its work), and features go
to resumable shards (``clip_study.data.shards``), so an interrupted run loses at most one shard of work
and memory stays flat."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from clip_study.data import shards
from clip_study.models import pixels
from clip_study.models.encoding import ImageEncoder, encode_batches, prepare_run
from clip_study.models.families import embedding_dim
from clip_study.models.loading import model_fingerprint
from clip_study.models.towers import image_tower


def default_workers(device: torch.device, cores: int) -> int:
    """Decoding workers: on a GPU, every core but the one feeding it (up to 32), as decoding and resizing
    are what bounds a GPU's rate; on a CPU the model needs every core, and preprocessing is about 5 % of a
    ViT-B/32 forward, so one worker only from 4 cores up."""
    if device.type == "cpu":
        return 0 if cores < 4 else 1
    return max(1, min(32, cores - 1))


@dataclass
class ExtractionPlan:
    """What a run will encode, decided alike by every engine (so a run started by one resumes under the
    other): the preprocessing and encoder chosen on the first images, the shards of each split (named by
    ``shards.settings_key`` of the image tower's weights, precision, encoder mode and preprocessing), those
    still missing from the work folder ``<out>.partial/``, and their image paths in order."""

    preprocessing: pixels.Preprocessing
    encode: ImageEncoder
    work: Path
    plans: dict[str, list[shards.Shard]]
    todo: dict[str, list[shards.Shard]]
    todo_paths: dict[str, list[Path]]
    dim: int


def plan_extraction(model: Any, processor: Any, splits: dict[str, tuple[list[Path], np.ndarray]], out: Path,
                    precision: str, shard_size: int, log: Callable[[str], None] = print) -> ExtractionPlan:
    """Decide preprocessing and encoder, name the shards, drop stale files from the work folder and list
    what is left to encode (saying so when a run resumes)."""
    first_paths = next((paths for paths, _ in splits.values() if paths), [])
    preprocessing, encode = prepare_run(model, processor, first_paths, precision, log)
    key = shards.settings_key(model=model_fingerprint(image_tower(model)),  # the weights image features read
                              precision=precision, encoder=encode.mode,
                              preprocessing=preprocessing.name, processor=processor.to_dict())
    work = out.with_name(out.name + ".partial")
    plans = {split: shards.plan(split, paths, shard_size, key) for split, (paths, _) in splits.items()}
    shards.prune(work, [shard for plan in plans.values() for shard in plan])
    dim = embedding_dim(model)
    todo = {split: shards.missing(work, plans[split], dim) for split in splits}
    todo_paths = {split: [path for shard in todo[split] for path in splits[split][0][shard.start:shard.stop]]
                  for split in splits}
    for split in splits:
        if len(todo[split]) < len(plans[split]):
            log(f"resuming {split}: {len(plans[split]) - len(todo[split])} of {len(plans[split])} shards already "
                "encoded")
    return ExtractionPlan(preprocessing, encode, work, plans, todo, todo_paths, dim)


def finish(plan: ExtractionPlan, splits: dict[str, tuple[list[Path], np.ndarray]], out: Path) -> None:
    """Assemble every split's shards into ``out/<split>.npz`` and remove the work folder."""
    for split, (_, labels) in splits.items():
        shards.assemble(plan.work, plan.plans[split], labels, plan.dim, out / f"{split}.npz")
    shards.remove(plan.work)


def extract_features(model: Any, processor: Any, splits: dict[str, tuple[list[Path], np.ndarray]],
                     out: Path, precision: str, batch_size: int, workers: int, shard_size: int,
                     log: Callable[[str], None] = print) -> tuple[int, float]:
    """Write ``out/<split>.npz`` (features and labels, see ``data.features``) for each split's image
    files, resuming from the shards in ``<out>.partial/`` that a stopped run left. One set of workers
    decodes every split in turn, so the model never waits for workers to start. Returns the number of
    images this run encoded and the seconds that took (from the first batch asked for to the last written)."""
    device = next(model.parameters()).device
    plan = plan_extraction(model, processor, splits, out, precision, shard_size, log)
    log(f"{torch.get_num_threads()} threads, {workers} workers, {plan.encode.mode}, {plan.preprocessing.name} "
        f"preprocessing, batches of {batch_size} on {device}")
    todo_paths = plan.todo_paths
    loader = pixels.pixel_batches([path for paths in todo_paths.values() for path in paths],
                                  plan.preprocessing.in_worker, batch_size, workers, device.type == "cuda",
                                  group_sizes=[len(paths) for paths in todo_paths.values()])
    batches = pixels.to_device_ahead(loader, device)
    start = time.perf_counter()
    for split in splits:
        count = len(todo_paths[split])
        split_batches = itertools.islice(batches, -(-count // batch_size))
        shards.write(plan.work, plan.todo[split], encode_batches(plan.encode, split_batches, count,
                                                                 desc=f"extract {split}"))
    seconds = time.perf_counter() - start
    finish(plan, splits, out)
    return sum(len(paths) for paths in todo_paths.values()), seconds
