"""Feature files: ``<split>.npz`` with ``features`` (N, D) float32 and ``labels`` (N,) int64, loadable
without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.errors import UserError
from clip_study.files import save_npz


def save_features(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    save_npz(path, features=features.astype(np.float32), labels=labels.astype(np.int64))


def load_features(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise UserError(f"{path} not found: no features there (dvc repro extracts them)")
    with np.load(path, allow_pickle=False) as npz:
        return npz["features"], npz["labels"]


def count_classes(*labels: np.ndarray) -> int:
    """Number of classes behind integer label arrays (labels are indices 0..C-1)."""
    return int(max(part.max() for part in labels) + 1)
