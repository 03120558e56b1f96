"""Params section ``captions``: caption datasets, a dataset kind of their own (images, each with any number of
captions, scored by retrieval rather than classification), each by a short name, with its source, the split
evaluated and how many images it keeps (read by fetch_captions)."""

from __future__ import annotations

import dataclasses
from typing import Any

from clip_study.pipeline.keys import Key, LocalPath, Section, is_integer, named_entries_problems, text
from clip_study.pipeline.sections.datasets import DATASET_KEYS, SHORT_NAME, SHORT_NAME_RULE, missing_defaults

CAPTION_KEYS = {
    "source": text("a hub dataset id (e.g. 'nlphuji/flickr_1k_test_image_text_retrieval') or a local folder",
                   doc="hub dataset id (its image column and its captions column: a list of captions per image, or "
                       "one caption per row), a local folder with a captions file (`<split>.jsonl` or `<split>.csv`, "
                       "else `captions.jsonl` or `captions.csv`: image path and caption), a local folder of a hub "
                       "dataset's parquet files (read in place), or a folder in CLIP_benchmark's webdataset layout "
                       "for captions (`dataset_type.txt`: retrieval; `<split>/0.tar`, ...)",
                   path=LocalPath("folder", hub="dataset")),
    "split": dataclasses.replace(DATASET_KEYS["split"], default="test",
                                 doc="the split evaluated: of a hub dataset, a parquet or webdataset folder, or the "
                                     "captions file `<split>.jsonl`/`<split>.csv` of a folder"),
    "max_images": Key("null (all images) or a whole number >= 2", lambda v: v is None or is_integer(v, 2),
                      default=None, doc="cap on images, a seeded random choice, each kept with every caption it has "
                                        "(`null`: all)"),
    "seed": dataclasses.replace(DATASET_KEYS["seed"], doc="seed of the cap"),
    "on_bad_image": DATASET_KEYS["on_bad_image"],
}


def captions_problems(captions: dict[Any, Any]) -> list[str]:
    """One line per bad entry of the captions section; none at all is fine (no retrieval is scored). As in
    datasets, every key is written: a missing one's line gives the default."""
    if not captions:
        return []
    return named_entries_problems("captions", captions, CAPTION_KEYS, SHORT_NAME, f"{SHORT_NAME_RULE}, e.g. flickr30k",
                                  "flickr30k: {source: <hub id or folder>, split: test, max_images: null, ...}") + \
        missing_defaults("captions", captions, CAPTION_KEYS)


def captions_across(params: dict[Any, Any]) -> list[str]:
    """No caption dataset takes the short name of a dataset or a shift set: all are fetched into the same folders
    (data/datasets/<short name>/), and scored under metrics/models/<model>/<short name>/."""
    taken = {str(name): section for section in ("datasets", "shifts")
             for name in (params.get(section) or {} if isinstance(params.get(section), dict) else {})}
    return [f"captions.{short}: the short name is also an entry of {taken[short]}; rename the caption dataset (both "
            "are fetched into data/datasets/<short name>/)"
            for short in (params.get("captions") or {}) if short in taken]


CAPTIONS = Section("captions", "caption datasets scored by retrieval (image to text and text to image): short name -> "
                               "its source and split; each runs its own stages (fetch_captions@<short name>, "
                               "extract_captions@<model>-<short name>, embed_captions@<model>-<short name>, "
                               "retrieval@<model>-<short name>); `{}`: none",
                   CAPTION_KEYS, own_problems=captions_problems, per_entry=True, across=captions_across)
