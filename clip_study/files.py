"""Reading and writing the study's files, in one place.

Reading: every file a user names (params, class names, templates, per-class prompts) and every file one
stage hands the next (the subset's tables, feature and text npz files, metrics) goes through the readers
here, which turn a missing file, another encoding, malformed YAML, JSON, CSV or TSV, a wrong top-level type,
a missing column or field, or a damaged npz into a ``BadFileError``: one line naming the file, the line
where known, and the fix the caller gives (correct the file, or rebuild it).

Writing: key-stable JSON, and npz files that carry no timestamps and appear complete or not at all.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import yaml

from clip_study.errors import BadFileError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store: npz members carry no run time
CORRECT = "correct the file"  # the fix for a file a user wrote, unless the caller knows a better one


class Fields(dict):
    """A JSON object read from a file: a field it lacks is a BadFileError naming the file, not a KeyError
    deep inside the code that reads it."""

    def __init__(self, path: str | Path, fix: str | None, items: Any = (), noun: str = "field") -> None:
        super().__init__(items)
        self.path, self.fix, self.noun = path, fix, noun

    def __missing__(self, key: str) -> Any:
        raise BadFileError(self.path, f"has no {self.noun} {key!r}", self.fix or CORRECT)


def _existing_file(path: str | Path, fix: str | None) -> Path:
    path = Path(path)
    if not path.exists():
        raise BadFileError(path, "not found", fix or "check the path")
    if path.is_dir():
        raise BadFileError(path, "is a folder, not a file", fix or "give the path of the file")
    return path


def read_bytes(path: str | Path, fix: str | None = None) -> bytes:
    """The bytes of a file."""
    path = _existing_file(path, fix)
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadFileError(path, f"cannot be read ({error.strerror})", fix or "fix its permissions") from error


def read_text(path: str | Path, fix: str | None = None) -> str:
    """A UTF-8 text file (a UTF-8 byte-order mark is allowed)."""
    data = read_bytes(path, fix)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadFileError(path, "is UTF-16 text, not UTF-8", fix or "save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        raise BadFileError(path, f"is not UTF-8 text (byte 0x{data[error.start]:02x} at line {line}, column "
                                 f"{column})", fix or "save it as UTF-8") from error


def read_json(path: str | Path, expect: type = dict, fix: str | None = None) -> Any:
    """A JSON file whose top level is ``expect`` (dict or list); its objects are ``Fields``."""
    text = read_text(path, fix)
    try:
        data = json.loads(text, object_hook=lambda pairs: Fields(path, fix, pairs))
    except json.JSONDecodeError as error:
        raise BadFileError(path, f"is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})",
                           fix or "correct the JSON") from error
    if not isinstance(data, expect):
        kinds = {dict: "an object {...}", list: "a list [...]"}
        found = next((kind for kind_type, kind in kinds.items() if isinstance(data, kind_type)), type(data).__name__)
        raise BadFileError(path, f"holds {found}, not {kinds.get(expect, expect.__name__)}", fix or CORRECT)
    return data


def read_yaml(path: str | Path, fix: str | None = None) -> Any:
    """A YAML file, refusing a key written twice in one mapping (YAML would silently keep the last)."""
    text = read_text(path, fix)
    try:
        duplicate = _duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = f"{getattr(error, 'problem', None) or error}{where}".replace("\n", " ")
        raise BadFileError(path, f"not valid YAML: {problem}", fix or "correct the YAML") from error
    if duplicate:
        raise BadFileError(path, duplicate, fix or "keep one, yaml would silently use the last")
    return data


def _duplicate_key(node: yaml.Node | None, prefix: str = "") -> str | None:
    """The first key written twice in one mapping, where."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            name = f"{prefix}{key}"
            if key in seen:
                return f"{name}: written twice (lines {seen[key]} and {key_node.start_mark.line + 1})"
            seen[key] = key_node.start_mark.line + 1
            found = _duplicate_key(value_node, f"{name}.")
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _duplicate_key(item, f"{prefix[:-1]}[{index}].")
            if found:
                return found
    return None


def read_table(path: str | Path, columns: list[str], delimiter: str = ",", header: bool = True,
               fix: str | None = None) -> list[tuple[int, dict[str, str]]]:
    """The non-blank rows of a CSV or TSV file as (line number, {column: value}): ``columns`` are found by
    the header line, or are the fields in order when there is none; every row has as many fields as that."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(read_text(path, fix), newline=""), delimiter=delimiter, quoting=quoting)
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise BadFileError(path, f"is not valid CSV (line {reader.line_num}: {error})", fix or CORRECT) from error
    names = columns
    if header:
        if not rows:
            raise BadFileError(path, f"is empty, not a table with columns {', '.join(columns)}", fix or CORRECT)
        names = rows.pop(0)[1]
        missing = [column for column in columns if column not in names]
        if missing:
            raise BadFileError(path, f"has no column {missing[0]!r} (its header: {','.join(names)})", fix or CORRECT)
    table = []
    for line, row in rows:
        if len(row) != len(names):
            separator = "tab" if delimiter == "\t" else repr(delimiter)
            raise BadFileError(path, f"line {line} has {len(row)} field(s), not {len(names)}",
                               fix or f"write {len(names)} fields a line, separated by a {separator}")
        table.append((line, {column: row[names.index(column)] for column in columns}))
    return table


def load_npz(path: str | Path, fix: str | None = None) -> Fields:
    """Every array of an npz file (loaded without pickle), by name; a missing one is a BadFileError."""
    path = _existing_file(path, fix)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an npz archive")
        with loaded as npz:
            return Fields(path, fix, {name: npz[name] for name in npz.files}, noun="array")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise BadFileError(path, f"is not a readable npz file ({detail})", fix or "write it again") from error


def write_json(path: str | Path, data: Any) -> None:
    """Write pretty, key-stable JSON (metrics files are committed and diffed in git)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def npy_member(archive: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> IO[bytes]:
    """An open ``<name>.npy`` member of an npz, its header written; the caller writes the C-order bytes.
    Its date is fixed: np.savez stamps the wall-clock time, so the same arrays gave different files
    (and DVC hashes) on every run."""
    entry = archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE), "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(
        entry, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return entry


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez, but the same arrays always give the same bytes, no array needs pickle, and the file
    appears complete or not at all (written under a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(np.asarray(array).dtype.hasobject for array in arrays.values()):
        raise TypeError(f"save_npz: {path.name} would hold Python objects, which only pickle could store")
    temporary = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            with npy_member(archive, name, array.dtype, array.shape) as entry:
                entry.write(array.tobytes())
    os.replace(temporary, path)
