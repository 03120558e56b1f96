"""Image-classification data: load a source, pick classes, split, and the on-disk subset format.

A source is a Hugging Face dataset id (default ``zh-plus/tiny-imagenet``) or a local folder in
imagefolder layout (one sub-folder per class). The fetch stage writes the chosen subset as

    <subset>/classes.json          [{"id": "n01443537", "name": "goldfish"}, ...]  (label = index)
    <subset>/train.csv, test.csv   file,label  (file relative to <subset>)
    <subset>/images/<split>/...    the original image bytes, never re-encoded

so every later stage reads the same images whatever the source was.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from stages.config import UserError, read_json, write_json
from stages.hub import load_from_hub

IMAGENET_CLASSES = Path(__file__).parent / "assets" / "imagenet_classes.tsv"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Example:
    """One image of the source: its file, or its encoded bytes (hub datasets), and its class id."""

    class_id: str
    path: Path | None = None
    data: bytes | None = None

    def suffix(self) -> str:
        if self.path is not None:
            return self.path.suffix.lower()
        image_format = Image.open(io.BytesIO(self.data)).format or "png"
        return {"JPEG": ".jpg"}.get(image_format, "." + image_format.lower())


def load_examples(dataset: str, split: str) -> list[Example]:
    """All examples of a local image folder, or of one split of a hub dataset."""
    if Path(dataset).is_dir():
        return scan_image_folder(Path(dataset))
    if Path(dataset).suffix or dataset.startswith((".", "/")) or dataset.count("/") > 1:
        raise UserError(f"data.dataset: '{dataset}' is neither a local folder nor a hub id like "
                        "'zh-plus/tiny-imagenet': check the path")
    return load_hub_examples(dataset, split)


def scan_image_folder(root: Path) -> list[Example]:
    """Imagefolder layout: each sub-folder is a class; image files are found by suffix, sorted."""
    examples = [Example(class_id=folder.name, path=file)
                for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
                for file in sorted(folder.iterdir())
                if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES]
    classes = {example.class_id for example in examples}
    if len(classes) < 2:
        raise UserError(f"data.dataset: folder {root} has {len(classes)} class folder(s) with images; "
                        "zero-shot classification needs at least 2 (one sub-folder of images per class)")
    return examples


def load_hub_examples(dataset: str, split: str) -> list[Example]:
    """A hub dataset's split, read as encoded bytes: its first Image column, its first ClassLabel."""
    import datasets

    def load(local_only: bool) -> Any:
        if local_only:  # datasets reads the offline switch from its config module, not the call
            import huggingface_hub.constants
            datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
        return datasets.load_dataset(dataset, split=split)

    table = load_from_hub(load, "dataset", dataset, "data.dataset")
    image_column = next((k for k, v in table.features.items() if isinstance(v, datasets.Image)), None)
    label_column = next((k for k, v in table.features.items() if isinstance(v, datasets.ClassLabel)), None)
    if image_column is None or label_column is None:
        raise UserError(f"data.dataset: '{dataset}' has no image column and class-label column "
                        f"(columns: {list(table.features)}); use an image-classification dataset")
    table = table.cast_column(image_column, datasets.Image(decode=False))
    label_names = table.features[label_column].names
    return [Example(class_id=label_names[label], data=image["bytes"])
            for image, label in zip(table[image_column], table[label_column])]


def class_names(class_ids: list[str], names_file: str | None = None) -> dict[str, str]:
    """Readable names: from ``names_file`` (tsv: id<TAB>name), else CLIP's curated ImageNet names
    for wnids, else the id with underscores as spaces."""
    table = read_names_tsv(IMAGENET_CLASSES, id_column="wnid")
    if names_file:
        table = read_names_tsv(Path(names_file), id_column=None)
    return {class_id: table.get(class_id, class_id.replace("_", " ")) for class_id in class_ids}


def read_names_tsv(path: Path, id_column: str | None) -> dict[str, str]:
    """id -> name from a tab-separated file (``id_column``/``name`` header, or two plain columns)."""
    if not path.is_file():
        raise UserError(f"data.class_names: file {path} not found: give a tsv of 'id<TAB>name' lines")
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line.strip()]
    if id_column is not None:
        header = rows.pop(0)
        return {row[header.index(id_column)]: row[header.index("name")] for row in rows}
    if any(len(row) != 2 for row in rows):
        raise UserError(f"data.class_names: every line of {path} must be 'id<TAB>name'")
    return dict(rows)


def select_classes(available: list[str], names: dict[str, str], spec: Any, seed: int) -> list[str]:
    """Class ids to keep, in the source's order: 'all', a seeded random count, or an explicit
    list of ids or names."""
    if spec in (None, "all"):
        return available
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 2 <= spec <= len(available):
            raise UserError(f"data.classes: {spec} classes requested, the dataset has {len(available)}; "
                            f"use a number from 2 to {len(available)}, 'all' or a list")
        chosen = set(np.random.default_rng(seed).choice(available, size=spec, replace=False).tolist())
        return [class_id for class_id in available if class_id in chosen]
    if isinstance(spec, list):
        by_name = {name: class_id for class_id, name in names.items()}
        missing = [c for c in spec if str(c) not in names and str(c) not in by_name]
        if missing:
            raise UserError(f"data.classes: {missing} not in the dataset (it has e.g. "
                            f"{available[:3]} = {[names[c] for c in available[:3]]}); fix or remove them")
        wanted = {str(c) if str(c) in names else by_name[str(c)] for c in spec}
        if len(wanted) < 2:
            raise UserError(f"data.classes: {spec} selects {len(wanted)} class; list at least 2")
        return [class_id for class_id in available if class_id in wanted]
    raise UserError(f"data.classes: {spec!r} is not 'all', a number or a list of class ids/names")


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``max_per_class`` random examples of each class (all if None)."""
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(kept))


def split_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified train/test split of ``range(len(labels))``, each part sorted."""
    counts = np.bincount(labels)
    if counts.min() < 2:
        raise UserError(f"data: class {int(counts.argmin())} has {counts.min()} image(s); a stratified "
                        "split needs at least 2 per class: raise data.max_per_class or drop that class")
    try:
        train, test = train_test_split(np.arange(len(labels)), test_size=test_size,
                                       random_state=seed, stratify=labels)
    except ValueError as error:
        raise UserError(f"data.test_size: {test_size} cannot split {len(labels)} images of "
                        f"{len(counts)} classes ({error}); change data.test_size") from error
    return np.sort(train), np.sort(test)


def write_subset(out: Path, examples: list[Example], labels: np.ndarray, classes: list[dict[str, str]],
                 splits: dict[str, np.ndarray]) -> None:
    """Write the subset format described in the module docstring (replacing ``out``)."""
    if out.exists():
        shutil.rmtree(out)
    for split, indices in splits.items():
        folder = out / "images" / split
        folder.mkdir(parents=True)
        rows = []
        for n, i in enumerate(indices):
            example = examples[i]
            file = folder / f"{n:06d}{example.suffix()}"
            if example.path is not None:
                shutil.copyfile(example.path, file)
            else:
                file.write_bytes(example.data)
            rows.append((file.relative_to(out).as_posix(), int(labels[i])))
        with open(out / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("file", "label"), *rows])
    write_json(out / "classes.json", classes)


def read_split(subset: str | Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Image paths and integer labels of one split of a written subset."""
    subset = Path(subset)
    table = subset / f"{split}.csv"
    if not table.is_file():
        raise UserError(f"{table} not found: run the fetch stage first (dvc repro)")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    return [subset / row["file"] for row in rows], np.array([int(row["label"]) for row in rows], dtype=np.int64)


def read_classes(subset: str | Path) -> list[dict[str, str]]:
    """The subset's classes, in label order."""
    return read_json(Path(subset) / "classes.json")


def save_features(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    """npz with ``features`` (N, D) float32 and ``labels`` (N,) int64: loadable without pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=features.astype(np.float32), labels=labels.astype(np.int64))


def load_features(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise UserError(f"{path} not found: run the extract stage first (dvc repro)")
    with np.load(path, allow_pickle=False) as npz:
        return npz["features"], npz["labels"]


def count_classes(*labels: np.ndarray) -> int:
    """Number of classes behind integer label arrays (labels are indices 0..C-1)."""
    return int(max(part.max() for part in labels) + 1)
