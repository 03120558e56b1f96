"""Params section ``datasets``: the datasets each model is evaluated on, each by a short name, with its source
and how its subset is chosen and split (read by scan and fetch; ``templates`` by zeroshot)."""

from __future__ import annotations

import re
from typing import Any

from clip_study.errors import UserError, shown
from clip_study.pipeline.keys import Key, LocalPath, Section, existing_file, first_duplicate, fraction, is_integer, \
    named_entries_problems, one_of, text, whole


def check_classes(name: str, value: Any) -> None:
    """A class list names each class once, and at least two: zero-shot needs a choice."""
    if isinstance(value, list):
        duplicate = first_duplicate(value)
        if duplicate is not None:
            raise UserError(f"{name}: {duplicate!r} is listed twice; list each class once")
        if len(value) < 2:
            raise UserError(f"{name}: {shown(value)} lists {len(value)} class(es); list at least 2")


# one entry of the datasets section; every stage declares the keys it reads, so each entry gives them all
DATASET_KEYS = {
    "source": text("a hub dataset id (e.g. 'zh-plus/tiny-imagenet') or a local folder",
                   doc="hub dataset id (its first image column and class-label column are used), a local folder "
                       "with one sub-folder of images per class, a local folder of a hub dataset's parquet files "
                       "(read in place), or a folder in CLIP_benchmark's webdataset layout (`<split>/0.tar`, ..., "
                       "read as streams)", path=LocalPath("folder", hub="dataset")),
    "split": text("a split name (e.g. 'valid')", default="train",
                  doc="split of a hub dataset, parquet folder or webdataset folder (ignored for an image folder)"),
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
                                 doc="tsv of `id<TAB>name` lines; default: the dataset's own (a webdataset's "
                                     "`classnames.txt`, a hub dataset's label names), CLIP's curated ImageNet names "
                                     "for wnids, else the folder name with `_` as spaces"),
    "templates": existing_file("a file of templates, one a line, each with {}",
                               doc="this dataset's zero-shot templates (one a line, `{}` for the class name), in "
                                   "place of `zeroshot.templates`; default: the dataset's own "
                                   "(a webdataset's `zeroshot_classification_templates.txt`), else "
                                   "`zeroshot.templates`"),
    "on_bad_image": one_of("skip", "fail", default="skip",
                           doc="an image (or a webdataset sample or shard) that will not read: `skip` it with a "
                               "warning (counted in `fetch.json`) or `fail` the run"),
}
# a short name becomes the last part of DVC stage names (extract@<model>-NAME: no '-', so the pair splits back),
# a folder and a metric key
SHORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
SHORT_NAME_RULE = "a letter then up to 39 letters, digits or '_'"
RETIRED = ("the data section is now one entry of datasets: write 'datasets: {<short name>: {source: <data.dataset>, "
           "split: ..., classes: ..., max_per_class: ..., test_size: ..., seed: ..., class_names: ..., templates: null, "
           "on_bad_image: ...}}' (docs/params.md#datasets)")
"""The message for a params file of before, with a ``data`` section."""


def datasets_problems(datasets: dict[Any, Any]) -> list[str]:
    """One line per bad entry of the datasets section. DVC needs every key a stage declares, so a key with a
    default must be written too: its line gives the default to write."""
    return named_entries_problems("datasets", datasets, DATASET_KEYS, SHORT_NAME,
                                  f"{SHORT_NAME_RULE}, e.g. tiny_imagenet",
                                  "tiny_imagenet: {source: zh-plus/tiny-imagenet, split: valid, ...}") + \
        missing_defaults("datasets", datasets, DATASET_KEYS)


def missing_defaults(section: str, entries: dict[Any, Any], keys: dict[str, Key]) -> list[str]:
    """One line per optional key an entry leaves out, giving the default to write: DVC needs every key a stage
    declares (datasets, shifts)."""
    return [f"{section}.{short}.{key}: missing; add '{key}: {shown_yaml(rule.default)}' (the default: "
            "DVC needs every key a stage declares)"
            for short, entry in (entries or {}).items() if isinstance(entry, dict)
            for key, rule in keys.items() if not rule.required and key not in entry]


def shown_yaml(value: Any) -> str:
    return "null" if value is None else str(value)


DATASETS = Section("datasets", "the datasets every model is evaluated on: short name -> its source and subset; "
                               "each runs its own stages (fetch@<short name>, extract@<model>-<short name>, ...)",
                   DATASET_KEYS, own_problems=datasets_problems, per_entry=True)
