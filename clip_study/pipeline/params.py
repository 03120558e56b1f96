"""Loading a params file (``params.yaml``, ``demo/params.yaml``) and checking the sections a stage reads
before it does any work; and naming the params key behind a library error."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from clip_study.errors import UserError, shown
from clip_study.files import read_yaml
from clip_study.pipeline.keys import Section


@contextmanager
def for_param(key: str) -> Iterator[None]:
    """Name ``key`` in front of a library UserError raised inside: the library says what is wrong with a
    value and how to fix it, the stage says which param held it."""
    try:
        yield
    except UserError as error:
        raise UserError(f"{key}: {error}") from error


def read_params(path: str | Path) -> dict[Any, Any]:
    """A params file as a mapping of sections, unchecked (plain yaml: 0.04 s, against 0.8 s for
    ``dvc.api.params_show``)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"params file {path} not found: run from the repository root or pass --params")
    params = read_yaml(path) or {}
    if not isinstance(params, dict):
        raise UserError(f"params file {path} must be a mapping of sections, got {type(params).__name__}")
    return params


def sections_problems(params: dict[Any, Any], sections: Iterable[Section],
                      elsewhere: Callable[[str], list[str]] | None = None) -> list[str]:
    """One line per problem of each of ``sections`` that the file has (an absent one: the stage that needs
    it says so); a section's problems across the file once it is valid itself."""
    found = []
    for section in sections:
        values = params.get(section.name)
        if section.name not in params:
            continue
        if not isinstance(values, dict):
            found.append(f"{section.name}: {shown(values)} must be a mapping of its keys ({', '.join(section.keys)})")
            continue
        own = section.problems(values, elsewhere)
        found += own or (section.across(params) if section.across is not None else [])
    return found


def stop_on(path: str | Path, problems: list[str]) -> None:
    """Raise the UserError for a params file with ``problems``: one line each, ``<file>: <problem>``, so that one
    run shows every fix to make (none: return)."""
    if problems:
        raise UserError("\n".join(f"{path}: {problem}" for problem in problems))


def load_params(path: str | Path, *sections: Section) -> dict[str, Any]:
    """Read a params file and check the ``sections`` a stage reads, so it stops on a bad param before doing
    any work; each checked section comes back with the defaults of its absent optional keys filled in.

    Only these sections are checked (the check stage, first in every ``dvc repro``, checks the whole file),
    so a stage depends on the checks of its own sections alone. The local paths they name are the check stage's
    to check (it knows which ones the pipeline writes); a stage reading a file or folder says if it is not there.
    """
    params = read_params(path)
    stop_on(path, sections_problems(params, sections))
    return {**params, **{section.name: section.with_defaults(params[section.name]) for section in sections
                         if isinstance(params.get(section.name), dict)}}


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One section of the params, which must exist and be a mapping."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise UserError(f"params: section '{name}' is missing or not a mapping: add '{name}:' with its keys")
    return value


def named_entry(params: dict[str, Any], name: str, short: str | None) -> tuple[str, dict[str, Any]]:
    """(short name, entry) of the entry of section ``name`` (models, datasets, shifts, captions) a stage runs for:
    ``short`` (its ``--model`` / ``--dataset`` / ``--shift`` / ``--captions``), or the only entry when there is one."""
    entries, option = section(params, name), "--captions" if name == "captions" else f"--{name.removesuffix('s')}"
    if short is None:
        if len(entries) != 1:
            raise UserError(f"{option}: several {name} are listed ({', '.join(entries)}): name one")
        short = next(iter(entries))
    if short not in entries:
        raise UserError(f"{option} {short}: not among the {name} ({', '.join(entries)}); add it under '{name}' "
                        "in the params file or name one of them")
    return short, entries[short]


def model_entry(params: dict[str, Any], short: str | None) -> tuple[str, str, str]:
    """(short name, checkpoint, family) of the model a stage runs for: ``short`` (its ``--model``), or the
    only model when there is one."""
    short, entry = named_entry(params, "models", short)
    return short, str(entry["name"]), str(entry["family"])  # the default filled in by load_params
