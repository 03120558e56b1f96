"""Image sources: a Hugging Face dataset id (default ``zh-plus/tiny-imagenet``) or a local folder in
imagefolder layout (one sub-folder per class; see ``scan_folder`` for nested folders, hidden files and
symlinks), read as a list of examples; which of them decode; and a small listing of a folder that
changes whenever its images do."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from clip_study.data.images import ImageProblem, check_image
from clip_study.errors import UserError
from clip_study.hub import load_from_hub

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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


def is_folder(dataset: str) -> bool:
    """Whether ``dataset`` names a local folder (else it must be a hub id)."""
    if Path(dataset).is_dir():
        return True
    if Path(dataset).suffix or dataset.startswith((".", "/")) or dataset.count("/") > 1:
        raise UserError(f"'{dataset}' is neither a local folder nor a hub id like 'zh-plus/tiny-imagenet': "
                        "check the path")
    return False


def load_source(dataset: str, split: str) -> Source:
    """All examples of a local image folder, or of one split of a hub dataset."""
    if is_folder(dataset):
        return scan_folder(Path(dataset))
    return Source(load_hub_examples(dataset, split))


def scan_folder(root: Path) -> Source:
    """Imagefolder layout: each sub-folder of ``root`` is a class; its image files are found by suffix
    (any case), recursively in nested folders (as torchvision's ImageFolder), in sorted order.

    Hidden files and folders (.DS_Store, .git) are skipped; symlinked files and folders are followed,
    each real folder once per class (no loop). Which files are images is decided by suffix here and by
    decoding in ``check_examples``, so a PNG named .jpg is fine."""
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
        raise UserError(f"folder {root} has {len(classes)} class folder(s) with images; "
                        "zero-shot classification needs at least 2 (one sub-folder of images per class)")
    return Source(examples, empty, ignored)


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` not hidden, sorted by name."""
    try:
        return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as error:
        raise UserError(f"cannot list folder {folder} ({error.strerror}): "
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
            files.append(entry)  # a broken symlink too: check_examples reports it as unreadable
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

    table = load_from_hub(load, "dataset", dataset)
    image_column = next((k for k, v in table.features.items() if isinstance(v, datasets.Image)), None)
    label_column = next((k for k, v in table.features.items() if isinstance(v, datasets.ClassLabel)), None)
    if image_column is None or label_column is None:
        raise UserError(f"'{dataset}' has no image column and class-label column "
                        f"(columns: {list(table.features)}); use an image-classification dataset")
    table = table.cast_column(image_column, datasets.Image(decode=False))
    label_names = table.features[label_column].names
    return [Example(class_id=label_names[label], data=image["bytes"], name=f"{dataset} {split} example {i}",
                    path=Path(image["path"]) if image["bytes"] is None and image.get("path") else None)
            for i, (image, label) in enumerate(zip(table[image_column], table[label_column]))]


def check_examples(examples: list[Example],
                   stop_at_first_bad: bool = False) -> tuple[list[Example], list[tuple[Example, ImageProblem]]]:
    """The examples that decode fully (the decode extraction will use), and the others with their problem;
    with ``stop_at_first_bad`` it returns as soon as one is bad."""
    usable, bad = [], []
    for example in examples:
        problem = check_image(example.source())
        if problem is None:
            usable.append(example)
            continue
        bad.append((example, problem))
        if stop_at_first_bad:
            break
    return usable, bad


def folder_listing(root: Path) -> dict[str, dict[str, Any]]:
    """Per class folder of ``root``: how many image files it holds, their bytes, and a digest of their
    names, sizes and modification times. Small even for ImageNet (one row per class) and read without
    opening an image, yet it changes whenever an image is added, removed, replaced or edited, so a
    pipeline can depend on it instead of on a folder it does not own."""
    listing = {}
    examples = scan_folder(root).examples  # grouped by class folder, in order
    for class_id, group in itertools.groupby(examples, key=lambda example: example.class_id):
        digest, count, size = hashlib.blake2b(digest_size=16), 0, 0
        for example in group:
            try:
                stat = os.stat(example.path)
            except OSError:  # a broken symlink: check_examples reports it, the listing records it
                stat = os.lstat(example.path)
            digest.update(f"{example.path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
                          .encode())
            count, size = count + 1, size + stat.st_size
        listing[class_id] = {"images": count, "bytes": size, "digest": digest.hexdigest()}
    return listing
