"""Params section ``shifts``: test-only datasets on which the classifiers fitted on one of the ``datasets`` are
scored (ImageNet-R, ObjectNet for an ImageNet study; the demo's outline, noisy and small shapes), each by a short
name, with its source, how its classes match the dataset's and how many images it keeps (read by fetch_shift)."""

from __future__ import annotations

import dataclasses
from typing import Any

from clip_study.errors import shown
from clip_study.pipeline.keys import Section, existing_file, named_entries_problems, text
from clip_study.pipeline.sections.datasets import DATASET_KEYS, SHORT_NAME, SHORT_NAME_RULE, missing_defaults

# one entry of the shifts section: a dataset entry's keys for where the images are and how many are kept (the same
# rules), no class choice, split or templates (every image is a test image, every matched class is kept, and the
# classifiers, prompts included, are the source dataset's), plus the dataset it shifts from and the class map
SHIFT_KEYS = {
    "of": text("the short name of an entry of datasets (e.g. 'tiny_imagenet')",
               doc="the datasets entry whose classifiers are scored on this shift set"),
    "source": DATASET_KEYS["source"],
    "split": DATASET_KEYS["split"],
    "max_per_class": dataclasses.replace(DATASET_KEYS["max_per_class"],
                                         doc="cap on images per class, a seeded random choice (`null`: all)"),
    "seed": dataclasses.replace(DATASET_KEYS["seed"], doc="seed of the cap"),
    "class_names": DATASET_KEYS["class_names"],
    "class_map": existing_file("a tsv of 'shift class<TAB>source class' lines",
                               doc="tsv of `shift class<TAB>source class` lines (each an id or a name; a shift class "
                                   "on several lines counts a prediction of any of its source classes as right); "
                                   "`null`: a shift class matches the source class of its id, else of its name. "
                                   "Unmatched shift classes are left out (docs/shift.md)"),
    "on_bad_image": DATASET_KEYS["on_bad_image"],
}


AVERAGE = "average"
"""No shift set's name: results.csv's name for the mean over a dataset's shift sets. The same text as
``clip_study.evaluation.shift.AVERAGE``, written here so that the params checks import no evaluation code (every
heavy stage reads a params section); tests/test_shift_data.py checks that they agree."""


def shifts_problems(shifts: dict[Any, Any]) -> list[str]:
    """One line per bad entry of the shifts section; none at all is fine (no shift set is scored). As in datasets,
    every key is written: a missing one's line gives the default."""
    if not shifts:
        return []
    return named_entries_problems("shifts", shifts, SHIFT_KEYS, SHORT_NAME, f"{SHORT_NAME_RULE}, e.g. imagenet_r",
                                  "imagenet_r: {of: imagenet, source: wds_imagenet-r, split: test, ...}") + \
        missing_defaults("shifts", shifts, SHIFT_KEYS)


def shifts_across(params: dict[Any, Any]) -> list[str]:
    """Each entry's ``of`` names an entry of datasets, and no shift set takes a dataset's short name: both are
    fetched into the same folders (data/datasets/<short name>/)."""
    datasets = params.get("datasets")
    names = [str(name) for name in datasets] if isinstance(datasets, dict) else []
    found = []
    for short, entry in (params.get("shifts") or {}).items():
        if short in names:
            found.append(f"shifts.{short}: the short name is also a dataset's; rename the shift set (both are "
                         "fetched into data/datasets/<short name>/)")
        if short == AVERAGE:
            found.append(f"shifts.{short}: results.csv names the mean over a dataset's shift sets {AVERAGE!r}; rename "
                         "the shift set")
        if entry["of"] not in names:
            found.append(f"shifts.{short}.of: {shown(entry['of'])} is not an entry of datasets "
                         f"({', '.join(names) or 'none'}); name one of them")
    return found


SHIFTS = Section("shifts", "test-only datasets scored with the classifiers fitted on one of the datasets: short name "
                           "-> its source, the dataset it shifts from (`of`) and how its classes match that "
                           "dataset's; each runs its own stages (fetch_shift@<short name>, "
                           "extract_shift@<model>-<short name>, shift@<model>-<short name>); `{}`: none",
                 SHIFT_KEYS, own_problems=shifts_problems, per_entry=True, across=shifts_across)
