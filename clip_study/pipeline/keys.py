"""How a params key is described and checked: ``Key`` (what a key may hold, its default, its meaning) and
``Section`` (the keys of one params section and the checks across them), with the building blocks the
section modules in ``clip_study.pipeline.sections`` are written with.

Kept apart from the sections so that a stage depends only on the checks of the sections it reads: an edit to
the zero-shot checks reruns the zeroshot stage, not feature extraction.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from clip_study.errors import UserError, shown

Check = Callable[[str, Any], None]  # (dotted key, value) -> None, or raises UserError
NO_DEFAULT = object()  # a required key: the params file must give it


def correct_the_path(path: str) -> str:
    return "correct the path"


@dataclass(frozen=True)
class LocalPath:
    """What the value of a key names on disk, for the check stage (``clip_study.pipeline.paths``): a ``kind``
    ('file' or 'folder') that must be there unless a stage of the pipeline writes it; with ``hub`` ('model',
    'dataset'), the value may instead be a hub id of that kind; with ``each``, the value is a mapping whose text
    values are such paths; ``fix``: what to do about one that is not there, given the path as written."""

    kind: str
    hub: str | None = None
    each: bool = False
    fix: Callable[[str], str] = correct_the_path


@dataclass(frozen=True)
class Key:
    """One param: what it may hold (``accepts``, in words ``allowed``), a deeper ``check`` with its own
    messages (run once ``accepts`` passed), what it means (``doc``), for a key that may be absent, the
    ``default`` a stage then uses, and for a key that names local paths, what they must be (``path``)."""

    allowed: str
    accepts: Callable[[Any], bool]
    check: Check | None = None
    default: Any = NO_DEFAULT
    doc: str = ""
    path: LocalPath | None = None

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass(frozen=True)
class Section:
    """One section of a params file: its keys in file order, a check across them (run once each key is
    valid), or a function that lists the section's problems itself (``models``, a mapping of named entries), and
    the problems that need other sections of the file (``across``: given the whole file, run once the section
    itself is valid; ``shifts``: each entry's ``of`` names a dataset)."""

    name: str
    doc: str
    keys: dict[str, Key]
    cross_check: Callable[[dict[str, Any]], None] | None = None
    own_problems: Callable[[dict[Any, Any]], list[str]] | None = field(default=None, repr=False)
    per_entry: bool = False  # the keys are those of each named entry (models: short name -> {name, family})
    moved: dict[str, str] = field(default_factory=dict)  # a key of before -> how to write it now ({value}: its value)
    across: Callable[[dict[Any, Any]], list[str]] | None = field(default=None, repr=False)

    def problems(self, values: dict[Any, Any], elsewhere: Callable[[str], list[str]] | None = None) -> list[str]:
        """One line per unknown, invalid or missing key of ``values``, in file order (``elsewhere``: the
        other sections that take a key, for a "did you mean" when it is in the wrong one)."""
        if self.own_problems is not None:
            return self.own_problems(values)
        for key, how in self.moved.items():
            if key in values:
                return [f"{self.name}.{key}: {how.format(value=values[key])}"]
        found = keys_problems(self.name, values, self.keys, elsewhere)
        if not found and self.cross_check is not None:
            try:
                self.cross_check(values)
            except UserError as error:
                found.append(str(error))
        return found

    def with_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` (each entry's, for a section of named entries) with the default of every absent
        optional key filled in."""
        defaults = {key: rule.default for key, rule in self.keys.items() if not rule.required}
        if self.per_entry:
            return {name: {**defaults, **entry} for name, entry in values.items()}
        return {**defaults, **values}


def is_integer(value: Any, minimum: int = 1, maximum: int | None = None) -> bool:
    """A whole number in [minimum, maximum]; a bool or a float (e.g. 6.5e2) is refused, not truncated."""
    return (not isinstance(value, bool) and isinstance(value, int) and value >= minimum
            and (maximum is None or value <= maximum))


def integer_range(minimum: int = 1, maximum: int | None = None) -> str:
    """What ``is_integer`` accepts, in words for error messages."""
    return f"a whole number >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")


def is_number(value: Any, positive: bool = True) -> bool:
    """A finite number > 0 (or >= 0 with ``positive=False``); a bool, nan or inf is refused."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and (value > 0 if positive else value >= 0))


def near_miss(word: str, choices: list[str]) -> str | None:
    """The one of ``choices`` that ``word`` is most likely a misspelling of (case-insensitive), if any."""
    lowered = {choice.lower(): choice for choice in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def first_duplicate(values: list[Any]) -> Any | None:
    """The first entry of ``values`` that came before (a repeated class or template is a slip)."""
    seen: list[Any] = []
    for value in values:
        if value in seen:
            return value
        seen.append(value)
    return None


# -- building blocks ----------------------------------------------------------------------------------

def whole(minimum: int = 1, maximum: int | None = None, doc: str = "", default: Any = NO_DEFAULT) -> Key:
    return Key(integer_range(minimum, maximum), lambda v: is_integer(v, minimum, maximum), default=default, doc=doc)


def real(positive: bool = True, doc: str = "") -> Key:
    return Key(f"a finite number {'> 0' if positive else '>= 0'}", lambda v: is_number(v, positive), doc=doc)


def fraction(doc: str = "") -> Key:
    return Key("a fraction between 0 and 1 (e.g. 0.2)", lambda v: is_number(v) and v < 1, doc=doc)


def text(allowed: str, doc: str = "", default: Any = NO_DEFAULT, path: LocalPath | None = None) -> Key:
    return Key(allowed, lambda v: isinstance(v, str) and v.strip() != "", default=default, doc=doc, path=path)


def auto_or_whole(minimum: int, doc: str = "") -> Key:
    return Key(f"'auto' or {integer_range(minimum)}", lambda v: v == "auto" or is_integer(v, minimum),
               default="auto", doc=doc)


def one_of(*choices: str, default: str, doc: str = "", extra: str = "", pattern: str | None = None,
           aliases: dict[str, str] | None = None) -> Key:
    """One of ``choices`` (or a match of ``pattern``, described by ``extra``), with a did-you-mean for
    a near-miss or a known alias (difflib alone would answer 'cpu' to 'gpu')."""
    allowed = "one of " + ", ".join(repr(choice) for choice in choices) + extra

    def check(name: str, value: Any) -> None:
        if value in choices or (pattern and isinstance(value, str) and re.fullmatch(pattern, value)):
            return
        match = None
        if isinstance(value, str):
            match = (aliases or {}).get(value.lower()) or near_miss(value, list(choices))
        raise UserError(f"{name}: {shown(value)} must be {allowed}" + (f"; did you mean {match!r}?" if match else ""))

    return Key(allowed, lambda v: True, check, default=default, doc=doc)


def existing_file(what: str, doc: str = "") -> Key:
    """Optional path of a file the user supplies (null: none), there when the check stage runs (unless a stage
    writes it), read by the stage that uses it."""
    return Key(f"null or the path of {what}", lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
               default=None, doc=doc, path=LocalPath("file", fix=lambda path: f"give {what} or null"))


# -- checking -------------------------------------------------------------------------------------------

def as_number_hint(value: Any) -> str:
    """'; YAML read it as text: write 0.0001' for a number that YAML kept as a string: PyYAML reads
    1e-4 (no dot) as text, and a quoted "0.2" is text too."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
            except ValueError:
                continue
            return f"; YAML read it as text: write {number!r}" if math.isfinite(number) else ""
    return ""


def check_value(name: str, key: Key, value: Any) -> None:
    """Raise the UserError for ``value`` of param ``name`` (e.g. 'probe.lr') if ``key`` refuses it."""
    if not key.accepts(value):
        raise UserError(f"{name}: {shown(value)} must be {key.allowed}{as_number_hint(value)}")
    if key.check is not None:
        key.check(name, value)


def keys_problems(section: str, values: dict[Any, Any], keys: dict[str, Key],
                  elsewhere: Callable[[str], list[str]] | None = None) -> list[str]:
    """One line per unknown, invalid or missing key of ``values`` (named ``section.key``), in file order.
    An unknown key gets a "did you mean" for a near-miss, else the keys of that name ``elsewhere`` gives."""
    found = []
    for key, value in values.items():
        name = f"{section}.{key}"
        if str(key) not in keys:
            match = near_miss(str(key), list(keys))
            hint = [f"{section}.{match}"] if match else (elsewhere(str(key)) if elsewhere else [])
            found.append(f"{name}: unknown key" + (f"; did you mean {' or '.join(hint)}?" if hint else "")
                         + f" ({section} takes {', '.join(keys)})")
            continue
        try:
            check_value(name, keys[str(key)], value)
        except UserError as error:
            found.append(str(error))
    return found + [f"{section}.{key}: missing; add {rule.allowed}"
                    for key, rule in keys.items() if rule.required and key not in values]


def named_entries_problems(section: str, values: dict[Any, Any], keys: dict[str, Key], short_name: re.Pattern,
                           name_rule: str, example: str) -> list[str]:
    """One line per bad entry of a section of named entries (models, datasets): a short name that DVC stage
    names, folders and metric keys can carry (``short_name``, in words ``name_rule``), and a mapping of ``keys``.
    ``example``: one entry as the user would write it."""
    if not values:
        return [f"{section}: empty; list at least one, e.g. '{example}'"]
    found = []
    for short, entry in values.items():
        name = f"{section}.{short}"
        if not isinstance(short, str) or not short_name.fullmatch(short):
            found.append(f"{name}: the short name must be {name_rule} (it names stages, folders and metric keys)")
        elif not isinstance(entry, dict):
            found.append(f"{name}: {shown(entry)} must be a mapping of its keys ({', '.join(keys)})")
        else:
            found += keys_problems(name, entry, keys)
    return found
