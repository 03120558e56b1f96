"""Records: the typed definition of a metrics file's JSON, and the codec between the two.

A record is a frozen, keyword-only dataclass that subclasses ``Record``: its fields, in order, are the keys of
its JSON object, so the definition fixes the keys and their order, and ``to_json`` gives what the stages always
wrote. Each field says what it means and its unit (``meaning``), which docs/metrics.md shows.

``from_json`` takes values as written (no number is converted, so a file read and written again is the same
bytes) and checks the shape: every field is there, no other key is, nested objects and lists are objects and
lists. On what ``read_json`` returns, a problem is a ``BadFileError`` naming the file and the fix. Whether a
number is in range is for the reader that uses it to say.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from clip_study.errors import BadFileError, shown
from clip_study.files import CORRECT, Fields, read_json

RecordT = TypeVar("RecordT", bound="Record")


def meaning(text: str, *, inline: bool = False, optional: bool = False, key: str | None = None,
            keyed_by: str | None = None) -> Any:
    """A record field and what it means, with its unit (one line; docs/metrics.md shows it).

    ``inline``: the field is a record whose keys are written in this object, in its place (the test scores
    beside a probe's counts). ``optional``: a file may lack it; None then, and None is left out when written
    (a field that is always written, sometimes as null, is typed ``X | None`` without this). ``key``: the JSON
    key, when it is no Python name (``class``). ``keyed_by``: for a mapping, what its keys are (docs)."""
    metadata = {"meaning": text, "inline": inline, "optional": optional, "key": key, "keyed_by": keyed_by}
    if optional:
        return dataclasses.field(default=None, metadata=metadata)
    return dataclasses.field(metadata=metadata)


def json_key(field: dataclasses.Field) -> str:
    """The key of ``field`` in the JSON object."""
    return field.metadata.get("key") or field.name


class Record:
    """Base of the records: subclasses are ``@dataclass(frozen=True, kw_only=True)`` classes whose every field
    is made by ``meaning``."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the fields' keys in the definition's order, inline records' keys in their place."""
        data: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if field.metadata["optional"] and value is None:
                continue
            if field.metadata["inline"]:
                data |= value.to_json()
            else:
                data[json_key(field)] = as_json(value)
        return data

    @classmethod
    def from_json(cls: type[RecordT], data: Mapping[str, Any]) -> RecordT:
        """The record of a JSON object, e.g. ``ProbeMetrics.from_json(read_json(path, fix=...))``, or of a dict
        a library function returned in this shape."""
        unknown = [key for key in data if key not in json_keys(cls)]
        if unknown:
            raise _bad_shape(data, f"has a field {unknown[0]!r} that no {cls.__name__} has")
        return cls._from_object(data)

    @classmethod
    def _from_object(cls: type[RecordT], data: Mapping[str, Any]) -> RecordT:
        hints = field_types(cls)
        values = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind, key = hints[field.name], json_key(field)
            if field.metadata["inline"]:
                values[field.name] = kind._from_object(data)
            elif field.metadata["optional"] and key not in data:
                values[field.name] = None
            else:
                values[field.name] = _from_json(kind, data[key], data, key)  # a Fields names the file when missing
        return cls(**values)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> its type (the annotations resolved)."""
    return typing.get_type_hints(cls)


@functools.cache
def json_keys(cls: type[Record]) -> frozenset[str]:
    """Every key of the record's JSON object, inline records' included."""
    keys: set[str] = set()
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        keys |= json_keys(field_types(cls)[field.name]) if field.metadata["inline"] else {json_key(field)}
    return frozenset(keys)


def without_none(kind: Any) -> tuple[Any, bool]:
    """(``X``, True) for ``X | None``; (``kind``, False) otherwise."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(others) == 1 and len(others) < len(typing.get_args(kind)):
            return others[0], True
    return kind, False


def as_json(value: Any) -> Any:
    """Records, and lists and mappings of them, as JSON data (what ``write_json`` writes)."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


def _from_json(kind: Any, value: Any, container: Mapping[str, Any], key: str) -> Any:
    """``value`` (``container[key]``) as a ``kind``: records built, lists and mappings walked, the rest kept."""
    kind, nullable = without_none(kind)
    if value is None and nullable:
        return None
    origin = typing.get_origin(kind)
    if isinstance(kind, type) and issubclass(kind, Record):
        if not isinstance(value, Mapping):
            raise _bad_shape(container, f"field {key!r} is {shown(value, 40)}, not an object {{...}}")
        return kind.from_json(value)
    if origin is list:
        if not isinstance(value, list):
            raise _bad_shape(container, f"field {key!r} is {shown(value, 40)}, not a list [...]")
        (item,) = typing.get_args(kind)
        return [_from_json(item, element, container, key) for element in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _bad_shape(container, f"field {key!r} is {shown(value, 40)}, not an object {{...}}")
        _, item = typing.get_args(kind)
        return {name: _from_json(item, element, value, name) for name, element in value.items()}
    return value


def _bad_shape(data: Mapping[str, Any], problem: str) -> Exception:
    """A BadFileError naming the file when ``data`` was read from one, else a TypeError (a caller's bug)."""
    if isinstance(data, Fields):
        return BadFileError(data.path, problem, data.fix or CORRECT)
    return TypeError(f"a JSON object that {problem}")


LAYOUTS = ("object", "rows", "by model and dataset")
"""How a file holds its record: one object; a list of them, one per row (a DVC plot); or an object whose one key,
the model's short name, holds an object whose one key, the dataset's, holds it (a DVC metrics file whose keys never
clash with another pair's)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsFile:
    """One metrics file: where a pipeline writes it, the stage that does, and the record its JSON holds."""

    path: str  # in the pipeline's folder, a (model, dataset) pair's files under models/<model>/<dataset>/
    stage: str  # the stage that writes it
    record: type[Record]  # the object the JSON holds (each row's, for "rows")
    layout: str = "object"  # one of LAYOUTS
    about: str  # what the file is for, one line

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.path}: layout {self.layout!r} is none of {LAYOUTS}")

    @property
    def name(self) -> str:
        """The file name without .json: how readers of a model's metrics folder name it."""
        return PurePosixPath(self.path).stem

    def read(self, path: str | Path, fix: str | None = None) -> Any:
        """The file as records: a record, a list of them ("rows"), or {model: {dataset: record}} ("by model and
        dataset"); a damaged one is a BadFileError naming it, with ``fix``."""
        data = read_json(path, expect=list if self.layout == "rows" else dict, fix=fix)
        if self.layout == "rows":
            rows = [row for row in data if not isinstance(row, Mapping)]
            if rows:
                raise BadFileError(path, f"holds a row {shown(rows[0], 40)}, not an object {{...}}", fix or CORRECT)
            return [self.record.from_json(row) for row in data]
        if self.layout == "by model and dataset":
            flat = next(((model, value) for model, value in data.items() if not isinstance(value, Mapping)), None)
            if flat is not None:
                raise _bad_shape(data, f"field {flat[0]!r} is {shown(flat[1], 40)}, not an object {{dataset: ...}}")
            return {model: {dataset: _from_json(self.record, value, data, f"{model}.{dataset}")
                            for dataset, value in by_dataset.items()}
                    for model, by_dataset in data.items()}
        return self.record.from_json(data)
