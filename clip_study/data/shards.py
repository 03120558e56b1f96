"""Resumable, memory-flat storage of extracted features.

Extraction writes each split's features in shards of ``shard_size`` images to a work folder next
to the output (``<out>.partial/``), each shard named by a hash of everything its features depend
on: the model's weights, the precision, the preprocessing and the bytes of its images. A rerun
after a crash or Ctrl-C keeps the shards whose hash still matches and encodes only the rest. When
every shard of a split exists, they are streamed into ``<split>.npz`` (written to a temporary name,
then renamed, so a reader never sees a half-written file) and the work folder is removed.
Memory holds one shard at a time, however many images there are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from clip_study.files import npy_member

HASH_THREADS = 8


@dataclass(frozen=True)
class Shard:
    """Images ``start:stop`` of one split, stored as ``<folder>/<name>.npy`` once encoded."""

    split: str
    start: int
    stop: int
    key: str

    @property
    def name(self) -> str:
        return f"{self.split}-{self.start:09d}-{self.key[:16]}.npy"

    def __len__(self) -> int:
        return self.stop - self.start


def settings_key(**settings: Any) -> str:
    """A hash of the settings that change the features (model fingerprint, precision, preprocessing)."""
    return hashlib.blake2b(json.dumps(settings, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def plan(split: str, paths: list[Path], shard_size: int, settings: str) -> list[Shard]:
    """The split's shards in order, each keyed by the settings and its images' bytes (read and hashed by a
    few threads: hashlib and file reads release the GIL, so ImageNet's 140 GB are not read one file at a time)."""
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        digests = list(pool.map(_file_digest, paths, chunksize=64))
    shards = []
    for start in range(0, len(paths), shard_size):
        digest = hashlib.blake2b(settings.encode(), digest_size=16)
        for file_digest in digests[start:start + shard_size]:
            digest.update(file_digest)
        shards.append(Shard(split, start, min(start + shard_size, len(paths)), digest.hexdigest()))
    return shards


def _file_digest(path: Path) -> bytes:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()


def prune(folder: Path, keep: list[Shard]) -> None:
    """Delete whatever the folder holds besides the shards still wanted (stale keys, temp files)."""
    wanted = {shard.name for shard in keep}
    for file in folder.glob("*") if folder.is_dir() else []:
        if file.name not in wanted:
            file.unlink()


def missing(folder: Path, shards: list[Shard], dim: int) -> list[Shard]:
    """The shards still to encode: those without a complete file of (images, ``dim``) float32 features. A
    shard file cut short or replaced is encoded again, never assembled."""
    return [shard for shard in shards if not _complete(folder / shard.name, len(shard), dim)]


def _complete(path: Path, rows: int, dim: int) -> bool:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header, checks the file's length
    except (OSError, ValueError, EOFError):
        return False
    return isinstance(array, np.ndarray) and array.shape == (rows, dim) and array.dtype == np.float32


def _save_atomic(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def write(folder: Path, shards: list[Shard], batches: Iterator[np.ndarray]) -> None:
    """Cut a stream of feature batches (the images of ``shards``, in order) into the shard files."""
    folder.mkdir(parents=True, exist_ok=True)
    pending, rows = iter(shards), []
    shard = next(pending, None)
    for batch in batches:
        rows.append(batch)
        while shard is not None and sum(len(r) for r in rows) >= len(shard):
            block = np.concatenate(rows)
            _save_atomic(folder / shard.name, np.ascontiguousarray(block[:len(shard)], dtype=np.float32))
            rows, shard = [block[len(shard):]], next(pending, None)
    if shard is not None or sum(len(r) for r in rows):
        raise RuntimeError("shards: the image stream and the shard plan disagree on the number of images")


def assemble(folder: Path, shards: list[Shard], labels: np.ndarray, dim: int, out: Path) -> None:
    """Stream the shards into ``out`` (an npz with ``features`` and ``labels``, as features.load_features reads),
    one shard in memory at a time, and rename it into place only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        with npy_member(archive, "features", np.dtype("<f4"), (len(labels), dim)) as entry:
            for shard in shards:
                entry.write(np.load(folder / shard.name, allow_pickle=False).astype("<f4").tobytes())
        with npy_member(archive, "labels", np.dtype("<i8"), (len(labels),)) as entry:
            entry.write(labels.astype("<i8").tobytes())
    os.replace(temporary, out)


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
