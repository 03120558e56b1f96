"""The subset the stages share: readable class names, the chosen classes, a per-class cap and a seeded
stratified train/test split, written once as

    <subset>/classes.json          [{"id": "n01443537", "name": "goldfish"}, ...]  (label = index)
    <subset>/train.csv, test.csv   file,label  (file relative to <subset>)
    <subset>/images/<split>/...    the original image bytes, never re-encoded
    <subset>/class_map.json        a shift set's alone (its test split alone): see clip_study/data/class_map.py
    <subset>/captions.json         a caption dataset's alone (its test split alone, each image its own class):
                                   see clip_study/data/captions.py

so every later step reads the same images whatever the source was. A local image file is hard-linked
where the filesystem allows (no bytes copied); a hub image's bytes, staged in ``<subset>/.staging`` while
checked, are moved into place.
"""

from __future__ import annotations

import csv
import importlib
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clip_study.errors import BadFileError, UserError
from clip_study.files import CORRECT, read_json, read_table, write_json

if TYPE_CHECKING:
    from clip_study.data.sources import Example

IMAGENET_CLASSES = Path(__file__).resolve().parents[1] / "assets" / "imagenet_classes.tsv"
STAGING = ".staging"  # inside the subset: the same filesystem, so moving a staged image is a rename
CLASS_MAP = "class_map.json"  # a shift set's subset: its classes' match to another dataset's (data/class_map.py)
CAPTIONS = "captions.json"  # a caption dataset's subset: each image's captions (data/captions.py)


def class_names(class_ids: list[str], names_file: str | None = None) -> dict[str, str]:
    """Readable names: from ``names_file`` (tsv: id<TAB>name), else CLIP's curated ImageNet names
    for wnids, else the id with underscores as spaces."""
    if names_file:
        table = {row["id"]: row["name"] for _, row in read_table(names_file, ["id", "name"], "\t", header=False)}
    else:
        table = imagenet_names()
    return {class_id: table.get(class_id, class_id.replace("_", " ")) for class_id in class_ids}


def imagenet_names() -> dict[str, str]:
    """CLIP's curated names of the 1,000 ImageNet classes, by wnid."""
    return {row["wnid"]: row["name"] for _, row in read_table(IMAGENET_CLASSES, ["wnid", "name"], "\t")}


def select_classes(available: list[str], names: dict[str, str], spec: Any, seed: int) -> list[str]:
    """Class ids to keep, in the source's order: 'all', a seeded random count, or an explicit
    list of ids or names."""
    if spec in (None, "all"):
        return available
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 2 <= spec <= len(available):
            raise UserError(f"{spec} classes requested, the dataset has {len(available)}; "
                            f"use a number from 2 to {len(available)}, 'all' or a list")
        chosen = set(np.random.default_rng(seed).choice(available, size=spec, replace=False).tolist())
        return [class_id for class_id in available if class_id in chosen]
    if isinstance(spec, list):
        return _listed_classes(available, names, [str(c) for c in spec])
    raise UserError(f"{spec!r} is not 'all', a number or a list of class ids/names")


def _listed_classes(available: list[str], names: dict[str, str], listed: list[str]) -> list[str]:
    """The classes an explicit list names (by id or name), refusing a name two classes share and a
    class listed twice (once by id, once by name)."""
    ids_of: dict[str, list[str]] = {}
    for class_id in available:
        ids_of.setdefault(names[class_id], []).append(class_id)
    missing = [c for c in listed if c not in names and c not in ids_of]
    if missing:
        raise UserError(f"{missing} not in the dataset (it has e.g. "
                        f"{available[:3]} = {[names[c] for c in available[:3]]}); fix or remove them")
    wanted: dict[str, str] = {}
    for entry in listed:
        ids = [entry] if entry in names else ids_of[entry]
        if len(ids) > 1:
            raise UserError(f"'{entry}' names {len(ids)} classes ({', '.join(ids)}); list them by id")
        if ids[0] in wanted:
            raise UserError(f"'{wanted[ids[0]]}' and '{entry}' are the same class ({ids[0]}); "
                            "list it once")
        wanted[ids[0]] = entry
    if len(wanted) < 2:
        raise UserError(f"{listed} selects {len(wanted)} class; list at least 2")
    return [class_id for class_id in available if class_id in wanted]


def check_distinct_names(chosen: list[str], names: dict[str, str]) -> None:
    """Two classes with one name get the same prompts, so zero-shot could never tell them apart."""
    first_with: dict[str, str] = {}
    for class_id in chosen:
        other = first_with.setdefault(names[class_id], class_id)
        if other != class_id:
            raise UserError(f"classes {other} and {class_id} are both named '{names[class_id]}'; "
                            "zero-shot cannot tell them apart: give one a distinct name in a class-names tsv "
                            "or leave one out")


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``max_per_class`` random examples of each class (all if None)."""
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(kept))


def import_splitter_early() -> None:
    """Start importing scikit-learn's splitter (~1 s, what split_indices needs) in a thread, so that it
    overlaps the scan and the image checks instead of following them."""
    threading.Thread(target=importlib.import_module, args=("sklearn.model_selection",), daemon=True).start()


def split_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified train/test split of ``range(len(labels))``, each part sorted."""
    from sklearn.model_selection import train_test_split  # imported here: only fetch splits (~1 s)

    counts = np.bincount(labels)
    if counts.min() < 2:
        raise UserError(f"class {int(counts.argmin())} has {counts.min()} image(s); a stratified "
                        "split needs at least 2 per class: give it more images or leave it out")
    try:
        train, test = train_test_split(np.arange(len(labels)), test_size=test_size,
                                       random_state=seed, stratify=labels)
    except ValueError as error:
        raise UserError(f"a fraction of {test_size} cannot split {len(labels)} images of {len(counts)} classes "
                        f"into two stratified parts ({error}); choose another fraction") from error
    return np.sort(train), np.sort(test)


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified (fit, validation) split of the train indices: every class in both parts,
    so a choice made on it (logreg's C, the probe's epoch) is judged on the same class mix as the test set."""
    if not 0 < fraction < 1:
        raise UserError(f"a validation fraction of {fraction!r} must be between 0 and 1 (e.g. 0.2)")
    try:
        return split_indices(labels, fraction, seed)
    except UserError as error:
        raise UserError(f"{fraction} cannot carve a stratified validation split from the train images "
                        f"({error})") from error


def start_subset(out: Path) -> Path:
    """Remove an earlier subset at ``out``; the folder where images are staged until the split is known."""
    if out.exists():
        shutil.rmtree(out)
    return out / STAGING


def write_subset(out: Path, examples: list[Example], labels: np.ndarray, classes: list[dict[str, str]],
                 splits: dict[str, np.ndarray]) -> None:
    """Write the subset format described in the module docstring, replacing ``out``: staged images move into
    place (the staging folder, with what the subset leaves out, is removed), files are linked or copied."""
    if out.exists():
        for entry in out.iterdir():
            if entry.is_dir() and not entry.is_symlink() and entry.name != STAGING:
                shutil.rmtree(entry)
            elif entry.name != STAGING:
                entry.unlink()
    for split, indices in splits.items():
        folder = out / "images" / split
        folder.mkdir(parents=True)
        rows = []
        for n, i in enumerate(indices):
            example = examples[i]
            name = f"images/{split}/{n:06d}{example.suffix()}"
            source, file = example.source(), os.path.join(out, name)
            if example.staged:
                os.replace(source, file)
            elif isinstance(source, Path):
                link_or_copy(source, file)
            else:
                Path(file).write_bytes(source)
            rows.append((name, int(labels[i])))
        with open(out / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("file", "label"), *rows])
    write_json(out / "classes.json", classes)
    shutil.rmtree(out / STAGING, ignore_errors=True)


def link_or_copy(source: Path, target: Path | str) -> None:
    """``target`` as a hard link to ``source`` (to the file a symlink resolves to): no bytes copied, no
    space used; a copy wherever the filesystem refuses (another device, permissions, no hard links).

    The link is made by linkat with AT_SYMLINK_FOLLOW, which Python asks for only when given a directory
    descriptor (else it calls link(), which on Linux links a symlink itself): so the target's folder is
    passed as one, and no path is resolved component by component."""
    target = Path(target)
    try:
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.link(source, target.name, dst_dir_fd=folder, follow_symlinks=True)
        finally:
            os.close(folder)
    except OSError:
        shutil.copyfile(source, target)


def split_names(subset: str | Path) -> tuple[str, ...]:
    """The splits of a written subset: a shift set's (it holds a class_map.json) and a caption dataset's (a
    captions.json) have their test split alone."""
    test_only = any((Path(subset) / name).is_file() for name in (CLASS_MAP, CAPTIONS))
    return ("test",) if test_only else ("train", "test")


def read_split(subset: str | Path, split: str, fix: str | None = None) -> tuple[list[Path], np.ndarray]:
    """Image paths and integer labels of one split of a written subset, checked against its classes and
    its image files (``fix``: what to say when they are damaged)."""
    subset = Path(subset)
    table = subset / f"{split}.csv"
    num_classes = len(read_classes(subset, fix))
    paths, labels = [], []
    for line, row in read_table(table, ["file", "label"], fix=fix):
        label = row["label"].strip()
        if not label.isdigit() or int(label) >= num_classes:
            raise BadFileError(table, f"line {line}: label {label!r} is not a class index 0..{num_classes - 1}",
                               fix or CORRECT)
        paths.append(subset / row["file"])
        labels.append(int(label))
    missing = next((path for path in paths if not path.is_file()), None)
    if missing is not None:
        raise BadFileError(missing, f"not found (listed in {table})", fix or CORRECT)
    return paths, np.array(labels, dtype=np.int64)


def read_classes(subset: str | Path, fix: str | None = None) -> list[dict[str, str]]:
    """The subset's classes, in label order: each an id and a name."""
    path = Path(subset) / "classes.json"
    classes = read_json(path, expect=list, fix=fix)
    for index, entry in enumerate(classes):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("name"), str)):
            raise BadFileError(path, f"entry {index} is not {{\"id\": ..., \"name\": ...}}", fix or CORRECT)
    if len(classes) < 2:
        raise BadFileError(path, f"lists {len(classes)} class(es), not at least 2", fix or CORRECT)
    return classes
