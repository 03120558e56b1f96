"""Writing an image folder (one sub-folder of images per class) in CLIP_benchmark's webdataset layout, which
this project (``clip_study.data.webdataset``) and CLIP_benchmark read: a way to share a dataset as a few large
files, and how the tests build one."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from clip_study.data.sources import scan_folder
from clip_study.data.webdataset import (CLASS_EXTENSION, CLASSNAMES, IMAGE_EXTENSIONS, KEY_DIGITS, NSHARDS, TEMPLATES,
                                        benchmark_template, read_classnames, tar_files)
from clip_study.errors import UserError
from clip_study.evaluation.prompts import check_templates
from clip_study.files import read_bytes


def write_webdataset(folder: Path, root: Path, split: str, samples_per_shard: int = 10_000,
                     templates: list[str] | None = None) -> int:
    """Write an image folder (one sub-folder per class) as split ``split`` of a webdataset folder ``root``
    that CLIP_benchmark and this project read; returns the number of shards.

    Class i is the i-th class folder with images in sorted order, named by its folder name with '_' as
    spaces (``classnames.txt``); the samples follow the folder scan's order, keyed s0000000, s0000001, ...;
    each image's bytes are copied unchanged (its extension: the file's suffix, .webp/.png/.jpg/.jpeg only)
    and are not decoded (a bad image stays bad, for fetch to report). ``templates`` (this project's '{}'
    form) are written as the dataset's own."""
    if samples_per_shard < 1:
        raise UserError(f"samples_per_shard is {samples_per_shard}; give 1 or more")
    examples = scan_folder(folder).examples
    for example in examples:
        if example.suffix().lstrip(".") not in IMAGE_EXTENSIONS:
            raise UserError(f"image {example.path} is a {example.suffix()} file; the webdataset layout holds "
                            ".webp, .png, .jpg and .jpeg images: convert it or move it out of the folder")
    out = root / split
    if out.exists() and (tar_files(out) or (out / NSHARDS).exists()):
        raise UserError(f"{out} already holds webdataset shards; remove it or choose another split")
    classes = list(dict.fromkeys(example.class_id for example in examples))
    names = [class_id.replace("_", " ") for class_id in classes]
    if len(set(names)) < len(names):
        twins = sorted(c for c in classes if names.count(c.replace("_", " ")) > 1)
        raise UserError(f"class folders {twins} of {folder} get the same class name ('_' is a space); rename one")
    written = read_classnames(root)
    if written is not None and written != names:
        raise UserError(f"{root / CLASSNAMES} lists other classes than {folder}; write each split of one "
                        "dataset from folders with the same class folders, or use another root")
    out.mkdir(parents=True, exist_ok=True)
    (root / CLASSNAMES).write_text("".join(f"{name}\n" for name in names))
    if templates is not None:
        check_templates(templates)
        (root / TEMPLATES).write_text("".join(f"{benchmark_template(t)}\n" for t in templates))
    label_of = {class_id: label for label, class_id in enumerate(classes)}
    width = max(KEY_DIGITS, len(str(len(examples) - 1)))
    shards = (len(examples) + samples_per_shard - 1) // samples_per_shard
    for index in range(shards):
        with tarfile.open(out / f"{index}.tar", "w", format=tarfile.PAX_FORMAT) as tar:
            for number in range(index * samples_per_shard, min((index + 1) * samples_per_shard, len(examples))):
                example = examples[number]
                key = f"s{number:0{width}d}"
                _add(tar, f"{key}.{CLASS_EXTENSION}", str(label_of[example.class_id]).encode())
                _add(tar, f"{key}{example.suffix()}", read_bytes(example.path, "replace or remove the image"))
    (out / NSHARDS).write_text(f"{shards}\n")
    return shards


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a file member with fixed metadata: the same folder gives the same shards, byte for byte."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))
