"""Which classes of a shift set (a test-only dataset: ImageNet-R, ObjectNet, the demo's outline shapes) are which
classes of the dataset whose classifiers are scored on it, and how a prediction is read there.

A shift class matches the source classes a map file pairs it with (``shift class<TAB>source class`` lines, each
side an id or a name), or without a file the source class of its id, else of its name. A shift class may match
several source classes (ObjectNet's "bicycle" is ImageNet's mountain bike and tandem bicycle): a prediction of
any of them is right. The classifiers score every source class; on a shift set they are read restricted to the
source classes some shift class matches, as the CLIP paper reads them on ImageNet-R, -A and ObjectNet
(``clip_study.evaluation.shift``). A shift
subset (``clip_study.data.subset``, a test split alone) carries its matching beside its classes::

    <subset>/class_map.json   {"of": "shapes", "source_classes": 49, "matches": [[3], [10, 11], ...]}

``matches[i]``: the source labels (indices into the source subset's classes.json) that shift label i counts as
right, every list non-empty (a shift class that matches nothing is left out of the subset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from clip_study.data.subset import CLASS_MAP, imagenet_names, read_classes
from clip_study.errors import BadFileError, shown
from clip_study.files import CORRECT, read_json, read_text, write_json

MAP_FIX = "write one 'shift class<TAB>source class' pair a line (each an id or a name; '#' starts a comment line)"


@dataclass(frozen=True)
class Matching:
    """Each shift class's source labels ([]: it matches none), and the lines of a map file left unused because
    they name an ImageNet class that the source subset does not hold (a map written for all 1,000 classes, read
    against a study of some of them)."""

    matches: list[list[int]]
    unused_lines: list[int]

    @property
    def matched(self) -> list[int]:
        """The shift classes (indices) that match at least one source class."""
        return [index for index, labels in enumerate(self.matches) if labels]


def resolve(token: str, classes: list[dict[str, str]], imagenet: dict[str, str]) -> list[int]:
    """The classes ``token`` names: the one of that id, else those of that name; an ImageNet wnid that is neither
    (``imagenet``: wnid -> CLIP's name) also names the class of its ImageNet name, so that a map written in wnids
    reads a dataset whose ids are names (CLIP_benchmark's webdatasets)."""
    for key, value in (("id", token), ("name", token), ("name", imagenet.get(token))):
        found = [index for index, entry in enumerate(classes) if value is not None and entry[key] == value]
        if found:
            return found
    return []


def match_classes(shift: list[dict[str, str]], source: list[dict[str, str]],
                  map_file: str | Path | None = None) -> Matching:
    """The source labels each shift class counts as right (both lists of ``{"id", "name"}``; ``source`` in label
    order): by the map file, or without one the source class of the shift class's id, else of its name."""
    imagenet = imagenet_names()
    if map_file is None:
        return Matching([same_class(entry, source, imagenet) for entry in shift], [])
    matches: list[set[int]] = [set() for _ in shift]
    unused = []
    known = set(imagenet) | set(imagenet.values())  # an ImageNet class: left out of the source subset, not a typo
    for number, left, right in map_lines(map_file):
        found = _resolved(map_file, number, left, shift, imagenet, "shift set")
        label = _resolved(map_file, number, right, source, imagenet, "source dataset", unknown_ok=known)
        if label is None:
            unused.append(number)
        else:
            matches[found].add(label)
    return Matching([sorted(labels) for labels in matches], unused)


def same_class(entry: dict[str, str], source: list[dict[str, str]], imagenet: dict[str, str]) -> list[int]:
    """The source class a shift class matches without a map: the one its id names, else its name ([]: none)."""
    for token in (entry["id"], entry["name"]):
        found = resolve(token, source, imagenet)
        if found:
            return found[:1]
    return []


def _resolved(map_file: str | Path, number: int, token: str, classes: list[dict[str, str]], imagenet: dict[str, str],
              what: str, unknown_ok: Collection[str] = ()) -> int | None:
    """The one class of ``classes`` that ``token`` (line ``number`` of the map) names; None for a token of
    ``unknown_ok`` that names none (an ImageNet class the source subset left out)."""
    found = resolve(token, classes, imagenet)
    if len(found) > 1:
        raise BadFileError(map_file, f"line {number}: {shown(token)} names {len(found)} classes of the {what} "
                                     f"({', '.join(classes[i]['id'] for i in found)})", "write the id of one")
    if not found:
        if token in unknown_ok:
            return None
        example = ", ".join(shown(entry["id"]) for entry in classes[:3])
        raise BadFileError(map_file, f"line {number}: {shown(token)} is no class id or name of the {what} (it has "
                                     f"e.g. {example}; columns: shift class<TAB>source class)",
                           "correct the name or remove the line")
    return found[0]


def map_lines(path: str | Path) -> list[tuple[int, str, str]]:
    """(line number, shift class, source class) of each pair of a map file; blank lines and lines starting with
    '#' are skipped."""
    found = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2 or not all(fields):
            raise BadFileError(path, f"line {number}: {shown(line, 60)} is not 'shift class<TAB>source class'",
                               MAP_FIX)
        found.append((number, fields[0], fields[1]))
    if not found:
        raise BadFileError(path, "holds no pair", MAP_FIX)
    return found


def write_class_map(subset: str | Path, of: str, source_classes: int, matches: list[list[int]]) -> None:
    """The shift subset's matching (its classes.json written first: the subset writer clears the folder)."""
    write_json(Path(subset) / CLASS_MAP, {"of": of, "source_classes": source_classes, "matches": matches})


def read_class_map(subset: str | Path, fix: str | None = None) -> tuple[str, int, list[list[int]]]:
    """(the dataset it shifts from, its number of classes, each shift label's source labels), checked against
    the subset's classes (``fix``: what to say when the file is damaged)."""
    path = Path(subset) / CLASS_MAP
    data = read_json(path, expect=dict, fix=fix)
    of, count, matches = data.get("of"), data.get("source_classes"), data.get("matches")

    def bad(problem: str) -> BadFileError:
        return BadFileError(path, problem, fix or CORRECT)

    if not isinstance(of, str) or not of:
        raise bad(f"'of' is {shown(of, 40)}, not a dataset's short name")
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise bad(f"'source_classes' is {shown(count, 40)}, not a number of classes >= 2")
    shift_classes = len(read_classes(subset, fix))
    if not isinstance(matches, list) or len(matches) != shift_classes:
        raise bad(f"'matches' is not a list of one entry per class of classes.json ({shift_classes})")
    for index, labels in enumerate(matches):
        if (not isinstance(labels, list) or not labels or len(set(labels)) != len(labels)
                or not all(isinstance(label, int) and not isinstance(label, bool) and 0 <= label < count
                           for label in labels)):
            raise bad(f"'matches' entry {index} is {shown(labels, 40)}, not a non-empty list of distinct source "
                      f"labels 0..{count - 1}")
    return of, count, matches

