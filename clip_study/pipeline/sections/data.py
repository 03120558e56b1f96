"""Params section ``data``: which images the study runs on and how they are split (read by scan and fetch)."""

from __future__ import annotations

from typing import Any

from clip_study.errors import UserError, shown
from clip_study.pipeline.keys import Key, LocalPath, Section, existing_file, first_duplicate, fraction, is_integer, \
    one_of, text, whole


def check_classes(name: str, value: Any) -> None:
    """A class list names each class once, and at least two: zero-shot needs a choice."""
    if isinstance(value, list):
        duplicate = first_duplicate(value)
        if duplicate is not None:
            raise UserError(f"{name}: {duplicate!r} is listed twice; list each class once")
        if len(value) < 2:
            raise UserError(f"{name}: {shown(value)} lists {len(value)} class(es); list at least 2")


DATA = Section("data", "which images the study runs on and how they are split", {
    "dataset": text("a hub dataset id (e.g. 'zh-plus/tiny-imagenet') or a local folder",
                    doc="hub dataset id (its first image column and class-label column are used), a local folder "
                        "with one sub-folder of images per class, or a local folder of a hub dataset's parquet "
                        "files (read in place)", path=LocalPath("folder", hub="dataset")),
    "split": text("a split name of the hub dataset (e.g. 'valid')", default="train",
                  doc="split of a hub dataset or parquet folder (ignored for an image folder)"),
    "classes": Key("'all', a number of classes >= 2, or a list of class ids or names (quoted strings)",
                   lambda v: v is None or v == "all" or is_integer(v, 2)
                   or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
                   check_classes, default="all",
                   doc="`all`, a number (a seeded random choice), or a list of class ids or names"),
    "max_per_class": Key("null (all images) or a whole number >= 2", lambda v: v is None or is_integer(v, 2),
                         default=None, doc="cap on images per class (`null`: all)"),
    "test_size": fraction(doc="test fraction of the stratified train/test split (the study: 0.2)"),
    "seed": whole(0, doc="seed of the class choice, the cap and the split"),
    "class_names": existing_file("a tsv of 'id<TAB>name' lines",
                                 doc="tsv of `id<TAB>name` lines; default: CLIP's curated ImageNet names for "
                                     "wnids, else the folder name with `_` as spaces"),
    "on_bad_image": one_of("skip", "fail", default="skip",
                           doc="an image that will not decode: `skip` it with a warning (counted in "
                               "`metrics/fetch.json`) or `fail` the run"),
})
