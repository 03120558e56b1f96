"""Params section ``fewshot``: logistic probes on k images per class (read by fewshot and zsinit)."""

from __future__ import annotations

from typing import Any

from clip_study.errors import UserError, shown
from clip_study.pipeline.keys import Key, Section, first_duplicate, is_integer, whole


def check_shots(name: str, shots: list[Any]) -> None:
    """Each k a whole number of images per class (or 'all', always added anyway), each once."""
    for k in shots:
        if k != "all" and not is_integer(k, 1):
            raise UserError(f"{name}: {shown(k)} must be a whole number of images per class >= 1 (or 'all')")
    duplicate = first_duplicate(shots)
    if duplicate is not None:
        raise UserError(f"{name}: {duplicate!r} is listed twice; list each k once")


FEWSHOT = Section("fewshot", "logistic probes on k labelled images per class, with the C logreg chose", {
    "shots": Key("a non-empty list of images per class, e.g. [1, 2, 4, 8, 16]",
                 lambda v: isinstance(v, list) and len(v) > 0, check_shots,
                 doc="train images per class; `all` is always added as the last point"),
    "seeds": whole(1, doc="runs per k, each on other images (k = all: one run)"),
    "seed": whole(0, doc="the images drawn for each run"),
})
