"""Image-classification data: load a source, pick classes, split, and the on-disk subset format.

A source is a Hugging Face dataset id (default ``zh-plus/tiny-imagenet``) or a local folder in
imagefolder layout (one sub-folder per class; see ``scan_folder`` for nested folders, hidden files and
symlinks). The fetch stage writes the chosen subset as

    <subset>/classes.json          [{"id": "n01443537", "name": "goldfish"}, ...]  (label = index)
    <subset>/train.csv, test.csv   file,label  (file relative to <subset>)
    <subset>/images/<split>/...    the original image bytes, never re-encoded

so every later stage reads the same images whatever the source was.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from stages.config import UserError, read_json, write_json
from stages.hub import load_from_hub

IMAGENET_CLASSES = Path(__file__).parent / "assets" / "imagenet_classes.tsv"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store: npz members carry no run time


@dataclass(frozen=True)
class Example:
    """One image of the source: its file, or its encoded bytes (hub datasets), and its class id."""

    class_id: str
    path: Path | None = None
    data: bytes | None = None
    name: str | None = None  # where it is, for messages (default: the path)

    def suffix(self) -> str:
        if self.path is not None:
            return self.path.suffix.lower()
        image_format = Image.open(io.BytesIO(self.data)).format or "png"
        return {"JPEG": ".jpg"}.get(image_format, "." + image_format.lower())

    def source(self) -> Path | bytes:
        """What ``images.open_rgb`` and ``images.check_image`` read."""
        return self.path if self.path is not None else self.data

    def where(self) -> str:
        return self.name or str(self.path)


@dataclass(frozen=True)
class Source:
    """A source's examples and what scanning it set aside (folders only)."""

    examples: list[Example]
    empty_classes: list[str] = field(default_factory=list)  # class folders without image files
    ignored_files: list[Path] = field(default_factory=list)  # non-image files, files outside class folders


def load_source(dataset: str, split: str) -> Source:
    """All examples of a local image folder, or of one split of a hub dataset."""
    if Path(dataset).is_dir():
        return scan_folder(Path(dataset))
    if Path(dataset).suffix or dataset.startswith((".", "/")) or dataset.count("/") > 1:
        raise UserError(f"data.dataset: '{dataset}' is neither a local folder nor a hub id like "
                        "'zh-plus/tiny-imagenet': check the path")
    return Source(load_hub_examples(dataset, split))


def scan_folder(root: Path) -> Source:
    """Imagefolder layout: each sub-folder of ``root`` is a class; its image files are found by suffix
    (any case), recursively in nested folders (as torchvision's ImageFolder), in sorted order.

    Hidden files and folders (.DS_Store, .git) are skipped; symlinked files and folders are followed,
    each real folder once per class (no loop). Which files are images is decided by suffix here and by
    decoding in fetch, so a PNG named .jpg is fine."""
    examples, empty, ignored = [], [], []
    for folder in _visible(root):
        if not folder.is_dir():
            ignored.append(folder)  # a file outside any class folder
            continue
        images = _image_files(folder, ignored, seen=set())
        examples += [Example(class_id=folder.name, path=file) for file in images]
        if not images:
            empty.append(folder.name)
    classes = {example.class_id for example in examples}
    if len(classes) < 2:
        raise UserError(f"data.dataset: folder {root} has {len(classes)} class folder(s) with images; "
                        "zero-shot classification needs at least 2 (one sub-folder of images per class)")
    return Source(examples, empty, ignored)


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` not hidden, sorted by name."""
    try:
        return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as error:
        raise UserError(f"data.dataset: cannot list folder {folder} ({error.strerror}): "
                        "fix its permissions or move it out of the dataset") from error


def _image_files(folder: Path, ignored: list[Path], seen: set[tuple[int, int]]) -> list[Path]:
    """Image files under ``folder``, depth first in name order; other files go to ``ignored``.
    ``seen`` holds the real folders visited, so a symlink loop is entered once."""
    key = (folder.stat().st_dev, folder.stat().st_ino)
    if key in seen:
        return []
    seen.add(key)
    files = []
    for entry in _visible(folder):
        if entry.is_dir():
            files += _image_files(entry, ignored, seen)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            files.append(entry)  # a broken symlink too: fetch reports it as unreadable
        elif entry.is_file():
            ignored.append(entry)
    return files


def load_hub_examples(dataset: str, split: str) -> list[Example]:
    """A hub dataset's split, read as encoded bytes (or the local file, for datasets that store paths):
    its first Image column, its first ClassLabel."""
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
    return [Example(class_id=label_names[label], data=image["bytes"], name=f"{dataset} {split} example {i}",
                    path=Path(image["path"]) if image["bytes"] is None and image.get("path") else None)
            for i, (image, label) in enumerate(zip(table[image_column], table[label_column]))]


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
        return _listed_classes(available, names, [str(c) for c in spec])
    raise UserError(f"data.classes: {spec!r} is not 'all', a number or a list of class ids/names")


def _listed_classes(available: list[str], names: dict[str, str], listed: list[str]) -> list[str]:
    """The classes an explicit list names (by id or name), refusing a name two classes share and a
    class listed twice (once by id, once by name)."""
    ids_of: dict[str, list[str]] = {}
    for class_id in available:
        ids_of.setdefault(names[class_id], []).append(class_id)
    missing = [c for c in listed if c not in names and c not in ids_of]
    if missing:
        raise UserError(f"data.classes: {missing} not in the dataset (it has e.g. "
                        f"{available[:3]} = {[names[c] for c in available[:3]]}); fix or remove them")
    wanted: dict[str, str] = {}
    for entry in listed:
        ids = [entry] if entry in names else ids_of[entry]
        if len(ids) > 1:
            raise UserError(f"data.classes: '{entry}' names {len(ids)} classes ({', '.join(ids)}); list them by id")
        if ids[0] in wanted:
            raise UserError(f"data.classes: '{wanted[ids[0]]}' and '{entry}' are the same class ({ids[0]}); "
                            "list it once")
        wanted[ids[0]] = entry
    if len(wanted) < 2:
        raise UserError(f"data.classes: {listed} selects {len(wanted)} class; list at least 2")
    return [class_id for class_id in available if class_id in wanted]


def check_distinct_names(chosen: list[str], names: dict[str, str]) -> None:
    """Two classes with one name get the same prompts, so zero-shot could never tell them apart."""
    first_with: dict[str, str] = {}
    for class_id in chosen:
        other = first_with.setdefault(names[class_id], class_id)
        if other != class_id:
            raise UserError(f"data.classes: classes {other} and {class_id} are both named '{names[class_id]}'; "
                            "zero-shot cannot tell them apart: give one a distinct name in a data.class_names tsv "
                            "or leave one out")


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``max_per_class`` random examples of each class (all if None)."""
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(kept))


def split_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified train/test split of ``range(len(labels))``, each part sorted."""
    from sklearn.model_selection import train_test_split  # imported here: only fetch splits (~1 s)

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


def npy_member(archive: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> IO[bytes]:
    """An open ``<name>.npy`` member of an npz, its header written; the caller writes the C-order bytes.
    Its date is fixed: np.savez stamps the wall-clock time, so the same arrays gave different files
    (and DVC hashes) on every run."""
    entry = archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE), "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(
        entry, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return entry


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez, but the same arrays always give the same bytes, no array needs pickle, and the file
    appears complete or not at all (written under a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(np.asarray(array).dtype.hasobject for array in arrays.values()):
        raise TypeError(f"save_npz: {path.name} would hold Python objects, which only pickle could store")
    temporary = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            with npy_member(archive, name, array.dtype, array.shape) as entry:
                entry.write(array.tobytes())
    os.replace(temporary, path)


def save_features(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    """npz with ``features`` (N, D) float32 and ``labels`` (N,) int64: loadable without pickle."""
    save_npz(path, features=features.astype(np.float32), labels=labels.astype(np.int64))


def load_features(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise UserError(f"{path} not found: run the extract stage first (dvc repro)")
    with np.load(path, allow_pickle=False) as npz:
        return npz["features"], npz["labels"]


def count_classes(*labels: np.ndarray) -> int:
    """Number of classes behind integer label arrays (labels are indices 0..C-1)."""
    return int(max(part.max() for part in labels) + 1)
