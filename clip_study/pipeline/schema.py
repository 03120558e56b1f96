"""The schema of a whole params file: every section (``params.yaml`` and ``demo/params.yaml`` share it).

The check stage checks a whole file against it, and every local path the file names
(``clip_study.pipeline.paths``), so a misspelt key or a missing folder anywhere stops ``dvc repro`` before any
stage runs, with one line per problem naming the key, the value and what is allowed. Each section lives in its
own module of ``clip_study.pipeline.sections``, so that a stage depends only on the checks of the sections it
reads. Checks that need the data (more classes requested than the dataset has, a patch size that does not
divide the images) stay in the stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection

from clip_study.pipeline.keys import Key, Section, near_miss
from clip_study.pipeline.params import read_params, sections_problems, stop_on
from clip_study.pipeline.paths import HubAnswer, paths_problems
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.sections.datasets import DATASETS, RETIRED
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.extract import EXTRACT
from clip_study.pipeline.sections.fewshot import FEWSHOT
from clip_study.pipeline.sections.generate import GENERATE
from clip_study.pipeline.sections.logreg import LOGREG
from clip_study.pipeline.sections.model import MODEL
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.sections.pretrain import PRETRAIN
from clip_study.pipeline.sections.probe import PROBE
from clip_study.pipeline.sections.retrieval import RETRIEVAL
from clip_study.pipeline.sections.shifts import SHIFTS
from clip_study.pipeline.sections.zeroshot import ZEROSHOT
from clip_study.pipeline.sections.zsinit import ZSINIT

# Every section, in params-file order (generate and pretrain: the demo's). The stages reading each are in
# dvc.yaml / demo/dvc.yaml, and in docs/params.md, which python -m tools.sync generates from this.
ALL_SECTIONS: tuple[Section, ...] = (DATASETS, SHIFTS, CAPTIONS, MODELS, MODEL, EXTRACT, ZEROSHOT, PROBE, LOGREG,
                                     FEWSHOT, ZSINIT, RETRIEVAL, EVALUATION, GENERATE, PRETRAIN)
SECTIONS: dict[str, dict[str, Key]] = {section.name: section.keys for section in ALL_SECTIONS}
RETIRED_SECTIONS = {"data": RETIRED}
"""Sections of an older params file, each with how to write it now."""


def elsewhere(key: str) -> list[str]:
    """The sections that take ``key`` (e.g. 'evaluation.val_fraction' for a 'val_fraction' put in probe)."""
    return [f"{section}.{key}" for section, keys in SECTIONS.items() if key in keys]


def problems(params: dict[Any, Any], written: Collection[str] | None = None) -> list[str]:
    """Every problem of a whole params file, one line each, in file order (empty: the file is valid): a
    section of no known name, and every problem of each known one; with ``written`` (the absolute paths the
    pipeline's stages write, which may be absent), every local path the params name that is not there."""
    by_name = {section.name: section for section in ALL_SECTIONS}
    found, hub = [], HubAnswer()
    for name in map(str, params):
        if name in by_name:
            found += sections_problems(params, [by_name[name]], elsewhere)
            if written is not None and isinstance(params[name], dict):
                found += paths_problems(by_name[name], params[name], written, hub)
        elif name in RETIRED_SECTIONS:
            found.append(f"{name}: {RETIRED_SECTIONS[name]}")
        else:
            match = near_miss(name, list(by_name))
            found.append(f"{name}: unknown section" + (f"; did you mean {match}?" if match else "")
                         + f" (sections: {', '.join(by_name)})")
    return found


def check_file(path: str | Path, written: Collection[str] | None = None) -> dict[str, Any]:
    """Read a whole params file and check every section of it, and with ``written`` the local paths it names
    (the check stage's work)."""
    params = read_params(path)
    stop_on(path, problems(params, written))
    return params
