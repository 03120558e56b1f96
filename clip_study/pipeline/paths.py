"""Params that name local paths (a dataset folder, a checkpoint directory, a class-names, template or prompts
file): whether each is there, checked for the whole file before any stage runs (the check stage).

A path in params is relative to the folder the pipeline runs in (the repository root, or ``demo/``). One that a
stage of the pipeline writes (``written``: the absolute paths of the outputs the pipeline declares) may be
absent until that stage runs. A value of a hub id's form that names no folder (``data/images`` or
``openai/clip-vit-base-patch32``) reads both ways: it passes when the local Hugging Face cache holds it, or when
the hub answers (the stage downloads it then), and is otherwise one line giving both readings. In offline mode
the hub is not asked, and otherwise its answer is awaited HUB_TIMEOUT seconds at most, so the check answers in
seconds with or without network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Collection, Iterator

from clip_study.hub import could_be_hub_id, in_local_cache, not_cached, offline_reason
from clip_study.pipeline.keys import LocalPath, Section

HUB_TIMEOUT = 1.0  # seconds the check waits for the hub to answer (it answers in well under that)


class HubAnswer:
    """Why the hub cannot be used now (None: it can), asked once for all the values of one check, and only when
    a value needs it: a second hub id does not wait HUB_TIMEOUT seconds again."""

    def __init__(self) -> None:
        self._asked: list[str | None] = []

    def reason(self) -> str | None:
        if not self._asked:
            self._asked.append(offline_reason(HUB_TIMEOUT))
        return self._asked[0]


def is_written(path: Path, written: Collection[str]) -> bool:
    """Whether ``path`` (absolute) is, or lies inside, one of the ``written`` paths (absolute)."""
    return any(path == out or out in path.parents for out in map(Path, written))


def path_problem(key: str, value: str, what: LocalPath, written: Collection[str],
                 hub: HubAnswer | None = None) -> str | None:
    """The problem of the local path ``value`` of param ``key``, described by ``what``; None when it is there,
    a stage writes it, or it is a hub id that the stage loading it will find (``hub``: asked only then)."""
    base = Path.cwd()
    path = Path(os.path.normpath(base / value))
    if path.exists():
        found = "folder" if path.is_dir() else "file"
        return None if found == what.kind else f"{key}: {value} is a {found}, not a {what.kind}: {what.fix(value)}"
    if is_written(path, written):
        return None
    missing = f"{key}: no such {what.kind} {value}" + ("" if Path(value).is_absolute() else f" (relative to {base})")
    if what.hub is None or not could_be_hub_id(value):
        return f"{missing}: {what.fix(value)}"
    if in_local_cache(what.hub, value):
        return None
    reason = (hub or HubAnswer()).reason()
    return None if reason is None else f"{missing}, and {not_cached(what.hub, value, reason)}"


def named_paths(section: Section, values: dict[Any, Any]) -> Iterator[tuple[str, str, LocalPath]]:
    """(dotted key, path as written, what it must be) for each local path the ``values`` of ``section`` name.
    A value its key refuses is left out: the section's check says what is wrong with it."""
    entries = values.items() if section.per_entry else [(None, values)]
    for entry, entry_values in entries:
        if not isinstance(entry_values, dict):
            continue
        prefix = section.name if entry is None else f"{section.name}.{entry}"
        for key, rule in section.keys.items():
            value = entry_values.get(key)
            if rule.path is None or value is None or not rule.accepts(value):
                continue
            named = value.items() if rule.path.each else [(None, value)]
            yield from ((f"{prefix}.{key}" + ("" if item is None else f".{item}"), path, rule.path)
                        for item, path in named if isinstance(path, str))


def paths_problems(section: Section, values: dict[Any, Any], written: Collection[str],
                   hub: HubAnswer | None = None) -> list[str]:
    """One line per local path the ``values`` of ``section`` name that is not there, nor under one of the
    ``written`` paths (absolute: what the pipeline's stages write)."""
    found = (path_problem(key, path, what, written, hub) for key, path, what in named_paths(section, values))
    return [problem for problem in found if problem is not None]
