"""A shift subset's ``class_map.json``: which source classes each of its classes matches, so that source-fitted
heads can be scored on it (``{"of": <source dataset>, "source_classes": <count>, "matches": [[source label
indices] for each shift class in label order]}``).

Minimal reader of that contract for the shift stage; the subset-writing side keeps its own copy at merge.
"""

from __future__ import annotations

from pathlib import Path

from clip_study.errors import BadFileError
from clip_study.files import CORRECT, read_json


def read_class_map(subset: str | Path, fix: str | None = None) -> tuple[str, int, list[list[int]]]:
    """(source dataset short name, its class count, each shift class's source class indices), checked."""
    path = Path(subset) / "class_map.json"
    data = read_json(path, fix=fix)
    of, count, matches = data["of"], data["source_classes"], data["matches"]
    if not isinstance(of, str) or not of:
        raise BadFileError(path, f"'of' is {of!r}, not the source dataset's short name", fix or CORRECT)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BadFileError(path, f"'source_classes' is {count!r}, not a class count >= 1", fix or CORRECT)
    if not isinstance(matches, list) or not matches:
        raise BadFileError(path, "'matches' is not a list with one entry per shift class", fix or CORRECT)
    for index, sources in enumerate(matches):
        if not (isinstance(sources, list) and sources and all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c < count for c in sources)):
            raise BadFileError(path, f"matches[{index}] is {sources!r}, not a non-empty list of source class indices "
                                     f"0..{count - 1}", fix or CORRECT)
    return of, count, matches
