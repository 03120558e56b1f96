"""Feature files: ``<split>.npz`` with ``features`` (N, D) float32 and ``labels`` (N,) int64, loadable
without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.errors import BadFileError
from clip_study.files import load_npz, save_npz


def save_features(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    save_npz(path, features=features.astype(np.float32), labels=labels.astype(np.int64))


def load_features(path: str | Path, fix: str | None = None,
                  num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels, checked: (N, D) finite floats, N integer labels >= 0 and, given ``num_classes``,
    below it: the classes they are scored on (``fix``: what to say when the file is damaged)."""
    fix = fix or "extract the features again"
    arrays = load_npz(path, fix)
    features, labels = arrays["features"], arrays["labels"]
    if features.ndim != 2 or features.dtype.kind != "f" or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise BadFileError(path, f"holds features {features.dtype} {features.shape} and labels {labels.dtype} "
                                 f"{labels.shape}, not (N, D) floats and N integers", fix)
    if len(features) != len(labels) or not len(labels) or labels.min() < 0:
        raise BadFileError(path, f"holds {len(features)} feature rows for {len(labels)} labels "
                                 f"(at least one, each >= 0)", fix)
    if not np.isfinite(features).all():
        raise BadFileError(path, f"holds non-finite features (row {int(np.argwhere(~np.isfinite(features))[0, 0])})",
                           fix)
    if num_classes is not None and labels.max() >= num_classes:
        raise BadFileError(path, f"has label {int(labels.max())}, beyond the {num_classes} classes of the subset",
                           fix)
    return features, labels


def load_splits(folder: str | Path, fix: str | None = None,
                num_classes: int | None = None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train features, labels) and (test features, labels) from ``folder``'s train.npz and test.npz."""
    return tuple(load_features(Path(folder) / f"{split}.npz", fix, num_classes) for split in ("train", "test"))


def count_classes(*labels: np.ndarray) -> int:
    """Number of classes behind integer label arrays (labels are indices 0..C-1)."""
    return int(max(part.max() for part in labels) + 1)
