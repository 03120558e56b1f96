"""CLIP_benchmark's webdataset layout, read as an image source with the standard library's ``tarfile``.

LAION's CLIP_benchmark publishes its datasets (``clip-benchmark/wds_*`` on the hub) as::

    <root>/classnames.txt                           class i's name on line i (blank lines skipped)
    <root>/zeroshot_classification_templates.txt    one template a line, '{c}' where the name goes
    <root>/dataset_type.txt                         optional: classification (the default), retrieval, ...
    <root>/<split>/nshards.txt                      the number of shards n
    <root>/<split>/0.tar ... <n-1>.tar              the samples

A sample is the consecutive tar members that share a key (the member's name up to the first dot of its
file name): ``<key>.cls`` holds the class index as text, ``<key>.webp``, ``.png``, ``.jpg`` or ``.jpeg``
the encoded image (the first of those, in that order, is the image; other members are ignored), as the
``webdataset`` package groups them. A retrieval dataset (``dataset_type.txt``: retrieval, no class names) holds
captions instead of a class: ``<key>.txt``, one caption a line (blank lines skipped; a caption's own newline
written as the two characters ``\\n``); read with ``kind=RETRIEVAL``, each row is its own label, named by its key.

Shards are streamed (``tarfile`` mode ``r|*``), never unpacked to disk: one pass reads the labels (only
``.cls`` members' bytes, or ``.txt``), another the images of the rows asked for. Memory stays flat whatever
the number of shards and samples: one sample's bytes at a time, and ``tarfile``'s list of members is emptied
as it goes.

Damage does not stop reading (a download cut short is the common case, and a folder source with a bad
image is read too): a shard that is missing, unreadable, not a tar or cut short, and a sample without an
image, without a ``.cls`` (``.txt``) or with a bad one, each become one line in ``WebdatasetTable.damaged``,
naming the shard and the sample or member; the samples before the damage in that shard are kept. The caller
decides what damage means (stage fetch: warn under ``on_bad_image: skip``, stop under ``fail``). Image
bytes that do not decode are not damage here: checking images is the caller's (``check_examples``).
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from clip_study.data.tables import Table
from clip_study.errors import BadFileError, UserError, shown
from clip_study.files import read_bytes, read_text

CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
DATASET_TYPE = "dataset_type.txt"
NSHARDS = "nshards.txt"
IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")  # CLIP_benchmark's, in the order it picks a sample's image
CLASS_EXTENSION = "cls"
MAX_CLASS_BYTES = 64  # a .cls member larger than this is not a class index (and is not read)
CAPTIONS_EXTENSION = "txt"  # a retrieval dataset's: the sample's captions, one a line
MAX_CAPTIONS_BYTES = 1_000_000  # a .txt member larger than this is not an image's captions (and is not read)
CLASSIFICATION, RETRIEVAL = "classification", "retrieval"  # the dataset types read here
KEY_DIGITS = 7        # write_webdataset's keys: s0000000, as CLIP_benchmark's converter names them
TEMPLATES_FIX = "write one template a line with '{c}' where the class name goes"


def split_names(root: Path) -> list[str]:
    """The splits of a webdataset folder: its visible sub-folders holding ``nshards.txt`` or ``0.tar``. (Two
    lookups a folder, no listing: every local dataset is asked, and ImageNet's class folders hold 1.28 M files.)"""
    try:
        folders = sorted(entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    except OSError:
        return []
    return [folder.name for folder in folders if (folder / NSHARDS).is_file() or (folder / "0.tar").is_file()]


def has_shards(root: Path) -> bool:
    """Whether ``root`` holds a split folder of shards (``<root>/<split>/0.tar`` or ``nshards.txt``): the
    webdataset layout, unless it also holds class folders of images (``sources.is_webdataset`` asks both)."""
    return bool(split_names(root))


def tar_files(folder: Path) -> list[Path]:
    """The visible ``*.tar`` files of ``folder``: numbered ones (0.tar, 00001.tar) in numeric order, then others
    by name."""
    try:
        files = [entry for entry in folder.iterdir()
                 if entry.suffix == ".tar" and not entry.name.startswith(".") and not entry.is_dir()]
    except OSError:
        return []
    return sorted(files, key=lambda file: (0, int(file.stem), "") if file.stem.isdigit() else (1, 0, file.name))


def shard_files(root: Path, split: str) -> list[Path]:
    """The shards of ``split`` in reading order: ``0.tar`` to ``<n-1>.tar`` when ``nshards.txt`` gives n (as
    CLIP_benchmark reads them; a listed shard may be missing, other tars are ignored), else every ``*.tar`` of
    the split folder, numbered ones in numeric order."""
    folder = root / split
    if not folder.is_dir():
        raise UserError(f"webdataset folder {root} has no split '{split}' (it has {split_names(root)}); "
                        "choose one of those splits")
    if (folder / NSHARDS).exists():
        text = read_text(folder / NSHARDS).strip()
        if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
            raise BadFileError(folder / NSHARDS, f"holds {shown(text)}, not a number of shards (1 or more)",
                               "write the number of <n>.tar shards of the split")
        return [folder / f"{index}.tar" for index in range(int(text))]
    shards = tar_files(folder)
    if not shards:
        raise UserError(f"split folder {folder} holds no *.tar shards and no {NSHARDS}; "
                        "give a webdataset split (0.tar, 1.tar, ...)")
    return shards


def classnames_path(root: Path) -> Path | None:
    """The dataset's ``classnames.txt`` (class i's name on line i), or None when it has none."""
    path = root / CLASSNAMES
    return path if path.exists() else None


def read_classnames(root: Path) -> list[str] | None:
    """The class names, one a line, stripped, blank lines skipped (as CLIP_benchmark reads them); None
    without the file. Two classes of one name would merge into one class here, so that is an error."""
    path = classnames_path(root)
    if path is None:
        return None
    names, first = [], {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if name in first:
            raise BadFileError(path, f"line {number}: class name {shown(name)} repeats line {first[name]}",
                               "make each class name distinct (line i names class i)")
        first[name] = number
        names.append(name)
    if not names:
        raise BadFileError(path, "holds no class names", "write class i's name on line i")
    return names


def dataset_templates(root: Path) -> list[str] | None:
    """The dataset's own zero-shot templates, from ``zeroshot_classification_templates.txt`` (one a line,
    blank lines skipped), converted from CLIP_benchmark's ``'{c}'`` (``str.format``: ``{{`` is a brace) to
    this project's ``'{}'`` (a literal placeholder); None when the file is absent."""
    path = root / TEMPLATES
    if not path.exists():
        return None
    templates = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            try:
                templates.append(project_template(line.strip()))
            except ValueError as error:
                raise BadFileError(path, f"line {number}: {shown(line.strip())} {error}", TEMPLATES_FIX) from error
    if not templates:
        raise BadFileError(path, "holds no templates", TEMPLATES_FIX)
    return templates  # checked where they are used (zeroshot), so that fetch does not depend on the prompt code


def project_template(template: str) -> str:
    """A CLIP_benchmark template ('a photo of a {c}.', filled by ``str.format(c=name)``) as this project's
    ('a photo of a {}.', filled by replacing '{}'); ValueError saying why one cannot be converted."""
    parts, marked, fields = [], [], 0  # marked: the literal text alone, each field a NUL
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:  # a lone brace: str.format would fail too
        raise ValueError(f"is not a format string ({error})") from error
    for literal, name, spec, conversion in parsed:
        parts.append(literal)
        marked.append(literal)
        if name is None:
            continue
        if name != "c" or spec or conversion:
            raise ValueError(f"has the field {{{name}}}; only '{{c}}' (the class name) is filled in")
        parts.append("{}")
        marked.append("\0")
        fields += 1
    if "{}" in "".join(marked):
        raise ValueError("holds a literal '{}', which this project would fill with the class name")
    if fields != 1:
        raise ValueError(f"has '{{c}}' {fields} times; this project fills in the class name exactly once")
    return "".join(parts)


def benchmark_template(template: str) -> str:
    """This project's template ('a photo of a {}.') as CLIP_benchmark writes it ('a photo of a {c}.')."""
    return "{c}".join(part.replace("{", "{{").replace("}", "}}") for part in template.split("{}"))


def dataset_type(root: Path) -> str:
    """What ``dataset_type.txt`` says the dataset is, in lower case (without the file: classification)."""
    path = root / DATASET_TYPE
    return read_text(path).strip().lower() if path.exists() else CLASSIFICATION


def _check_type(root: Path, kind: str) -> None:
    """Refuse a dataset of another type than ``kind``: a retrieval one's samples hold captions, a classification
    one's a class index, a multi-label one's label vectors."""
    path, found = root / DATASET_TYPE, dataset_type(root)
    if found == kind:
        return
    if kind == CLASSIFICATION:
        raise UserError(f"{path} says {shown(found)}: only classification webdatasets (a class index in each "
                        "sample's .cls) can be read; use a zero-shot classification dataset (a retrieval one: list "
                        "it under captions)")
    says = f"{path} says {shown(found)}" if path.exists() else f"{root} has no {DATASET_TYPE} (so: classification)"
    raise UserError(f"{says}: a caption dataset is a retrieval webdataset (a .txt of captions in each sample, "
                    f"{DATASET_TYPE} saying 'retrieval'); use one (a classification one: list it under datasets)")


class _BadHeader(tarfile.ReadError):
    """A tar header where a member or the end-of-archive marker should be: ``truncated`` or ``damaged``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class _Header(tarfile.TarInfo):
    """A member header that tells the archive's end from a file cut short. ``tarfile`` stops reading quietly
    at a missing, partial or damaged header after the first member; only a zero block ends an archive."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        try:
            return super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as error:
            if len(buf) == tarfile.BLOCKSIZE and not any(buf):
                raise  # a zero block: the end-of-archive marker
            if not buf:
                raise _BadHeader("truncated", "it ends without the end-of-archive marker") from error
            if len(buf) < tarfile.BLOCKSIZE:
                raise _BadHeader("truncated", "it ends inside a member header") from error
            raise _BadHeader("damaged", f"a member header is damaged: {error}") from error


def _key_and_extension(name: str) -> tuple[str | None, str]:
    """A member's sample key and extension as webdataset splits them: ``a/b.seg.png`` -> (``a/b``,
    ``seg.png``); (None, "") for a name without an extension or a ``__meta__`` file, which belong to no sample."""
    folder, _, base = name.rpartition("/")
    if "." not in base or (not folder and base.startswith("__") and base.endswith("__")):
        return None, ""
    key, extension = base.split(".", 1)
    return (f"{folder}/{key}" if folder else key), extension.lower()


@dataclass
class _Sample:
    """The members of one sample read so far: their extensions and names, and the bytes of those read."""

    key: str
    extensions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)
    too_large: dict[str, int] = field(default_factory=dict)  # a .cls member too large to read: its size


class _Wanted:
    """Whether a row is asked for, for ascending queries over ascending rows (no set of them all is built)."""

    def __init__(self, rows: Sequence[int] | None) -> None:
        self.rows, self.cursor = (rows if rows is not None else []), 0

    def __contains__(self, row: int) -> bool:
        while self.cursor < len(self.rows) and self.rows[self.cursor] < row:
            self.cursor += 1
        return self.cursor < len(self.rows) and self.rows[self.cursor] == row


class WebdatasetTable(Table):
    """One split of a webdataset folder as a table: row i is the i-th usable sample in shard order. Of a
    retrieval dataset (``kind=RETRIEVAL``), row i's label is i, named by the sample's key, and ``captions`` holds
    each row's captions (a sample whose .txt holds none: an empty list)."""

    def __init__(self, root: Path, split: str, kind: str = CLASSIFICATION) -> None:
        _check_type(root, kind)
        self.root, self.split, self.kind = root, split, kind
        self.label_extension = CLASS_EXTENSION if kind == CLASSIFICATION else CAPTIONS_EXTENSION
        self.shards = shard_files(root, split)
        self.classnames = read_classnames(root) if kind == CLASSIFICATION else None
        self.damaged: list[str] = []  # one line per damaged shard or sample, filled by the labels pass
        self.captions: list[list[str]] = []  # a retrieval dataset's, per row, filled by the labels pass
        self._labels: np.ndarray | None = None
        self._members: list[str] = []  # per row: its image member, for messages
        self._shard_of: np.ndarray | None = None
        self._stats: list[tuple[int, int] | None] = []  # per shard at the labels pass: (bytes, mtime_ns)
        names = self.classnames
        if kind == RETRIEVAL:  # each row its own label, named by its key
            self.labels()
            names = [_key_and_extension(member)[0] for member in self._members]
        elif names is None:  # the class index as its name: how many there are is known after reading
            labels = self.labels()
            names = [str(index) for index in range(int(labels.max()) + 1 if len(labels) else 0)]
        super().__init__(f"{root} {split}", "/".join(IMAGE_EXTENSIONS), self.label_extension, names)

    def labels(self) -> np.ndarray:
        """The class index of every row (of a retrieval dataset: the row itself): one streaming pass over the
        shards (read once, then kept), which also fills ``damaged`` and ``captions``."""
        if self._labels is None:
            self._stats = [_stat(shard) for shard in self.shards]
            labels, shard_of, members, damaged, captions = [], [], [], [], []
            for row, value, shard, member, _ in self._walk(None, damaged):
                if self.kind == RETRIEVAL:
                    labels.append(row)
                    captions.append(value)
                else:
                    labels.append(value)
                shard_of.append(shard)
                members.append(member)
            self._labels = np.array(labels, dtype=np.int64)
            self._shard_of = np.array(shard_of, dtype=np.int32)
            self._members, self.damaged, self.captions = members, damaged, captions
        return self._labels

    def row_name(self, row: int) -> str:
        """Where a row's image is: its shard and member."""
        self.labels()
        return f"{self.shards[int(self._shard_of[row])]} member {self._members[row]}"

    def images(self, rows: Sequence[int]) -> Iterator[tuple[int, bytes | None, str | None]]:
        """(row, encoded bytes, None) of each of ``rows`` (ascending), in one streaming pass that stops after
        the last of them. A shard changed since the labels were read would shift the rows: that is an error."""
        wanted = np.asarray(rows, dtype=np.int64)
        count = len(self.labels())
        if np.any(np.diff(wanted) <= 0):
            raise ValueError("rows must be ascending and distinct")
        if len(wanted) and not 0 <= wanted[0] <= wanted[-1] < count:
            raise ValueError(f"rows must be in 0..{count - 1}")
        if not len(wanted):
            return
        asked, last = _Wanted(wanted), int(wanted[-1])
        for row, _, _, _, data in self._walk(wanted, []):
            if row in asked:
                yield row, data, None
            if row == last:
                return
        raise UserError(f"{self.root / self.split} holds fewer usable samples than when its labels were read; "
                        "a shard changed: run again")

    def _walk(self, rows: Sequence[int] | None, damaged: list[str],
              ) -> Iterator[tuple[int, Any, int, str, bytes | None]]:
        """(row, label or captions, shard index, image member, image bytes if the row is in ``rows``) of each
        usable sample, in order, shard by shard; a damaged shard or sample adds a line to ``damaged``."""
        wanted, row = _Wanted(rows), 0
        for index, shard in enumerate(self.shards):
            if rows is not None and _stat(shard) != self._stats[index]:
                raise UserError(f"shard {shard} changed while the dataset was read; run again")
            last_key, sample, members_read = None, None, 0
            try:
                with tarfile.open(shard, mode="r|*", tarinfo=_Header) as tar:
                    while (member := tar.next()) is not None:
                        tar.members.clear()  # tarfile keeps every header it read: memory would grow per member
                        members_read += 1
                        key, extension = _key_and_extension(member.name)
                        if key is None or not member.isreg():
                            continue
                        if sample is None or key != sample.key or extension in sample.extensions:
                            if sample is not None:  # complete: its last member was read whole
                                row = yield from self._finish(sample, shard, index, row, wanted, damaged)
                                last_key = sample.key
                            sample = _Sample(key)
                        sample.extensions.append(extension)
                        sample.names[extension] = member.name
                        if extension == self.label_extension and member.size > self._max_label_bytes():
                            sample.too_large[extension] = member.size
                        elif extension == self.label_extension or (extension in IMAGE_EXTENSIONS and row in wanted):
                            sample.data[extension] = tar.extractfile(member).read()
                if sample is not None:
                    row = yield from self._finish(sample, shard, index, row, wanted, damaged)
            except (tarfile.TarError, OSError, EOFError) as error:
                damaged.append(_shard_damage(shard, error, members_read, last_key,
                                             sample.key if sample is not None else None, len(self.shards)))

    def _finish(self, sample: _Sample, shard: Path, index: int, row: int, wanted: _Wanted, damaged: list[str],
                ) -> Iterator[tuple[int, Any, int, str, bytes | None]]:
        """Yield a complete sample as the next row if usable, else record why not; return the next row."""
        problem, label, image = self._judge(sample)
        if problem is not None:
            damaged.append(f"shard {shard}: sample {sample.key}: {problem}")
            return row
        yield row, label, index, sample.names[image], sample.data.get(image) if row in wanted else None
        return row + 1

    def _max_label_bytes(self) -> int:
        return MAX_CLASS_BYTES if self.kind == CLASSIFICATION else MAX_CAPTIONS_BYTES

    def _judge(self, sample: _Sample) -> tuple[str | None, Any, str]:
        """(why the sample is unusable or None, its class index or captions, its image extension)."""
        image = next((extension for extension in IMAGE_EXTENSIONS if extension in sample.extensions), "")
        has = ", ".join(f".{extension}" for extension in sample.extensions)
        if not image:
            return f"no image member (.webp, .png, .jpg or .jpeg; it has {has})", 0, image
        if self.kind == RETRIEVAL:
            return (*_captions(sample, has), image)
        if CLASS_EXTENSION not in sample.extensions:
            return f"no .cls member with its class index (it has {has})", 0, image
        member = f"member {sample.names[CLASS_EXTENSION]}"
        if CLASS_EXTENSION in sample.too_large:
            return f"{member} holds {sample.too_large[CLASS_EXTENSION]} bytes, not a class index", 0, image
        text = sample.data[CLASS_EXTENSION].decode("ascii", errors="replace").strip()
        if not re.fullmatch(r"[0-9]+", text):
            return f"{member} holds {shown(text)}, not a class index (0, 1, ...)", 0, image
        label = int(text)
        if self.classnames is not None and label >= len(self.classnames):
            return (f"{member} holds class {label}, but {CLASSNAMES} lists {len(self.classnames)} classes "
                    f"(0 to {len(self.classnames) - 1})"), 0, image
        return None, label, image


def _captions(sample: _Sample, has: str) -> tuple[str | None, list[str]]:
    """(why the sample's captions cannot be read or None, its captions): its .txt's non-blank lines, each with
    the two characters \\n turned back into the newline they stand for."""
    if CAPTIONS_EXTENSION not in sample.extensions:
        return f"no .txt member with its captions (it has {has})", []
    member = f"member {sample.names[CAPTIONS_EXTENSION]}"
    if CAPTIONS_EXTENSION in sample.too_large:
        return f"{member} holds {sample.too_large[CAPTIONS_EXTENSION]} bytes, not an image's captions", []
    try:
        text = sample.data[CAPTIONS_EXTENSION].decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return f"{member} is not UTF-8 text (byte {error.start})", []
    return None, [line.rstrip("\r").replace("\\n", "\n") for line in text.split("\n") if line.strip()]


def _stat(path: Path) -> tuple[int, int] | None:
    """A shard's (bytes, mtime_ns), None when it cannot be found: what tells a shard replaced between passes."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _shard_damage(shard: Path, error: BaseException, members_read: int, last_key: str | None,
                  current_key: str | None, count: int) -> str:
    """One line saying what is wrong with a shard, and from which sample on its samples are lost."""
    if isinstance(error, FileNotFoundError):
        return f"shard {shard}: missing (the split has {count} shards)"
    if isinstance(error, OSError):
        return f"shard {shard}: cannot be read ({error.strerror or error})"
    detail = str(error) or type(error).__name__
    if members_read == 0:
        if _stat(shard) is not None and _stat(shard)[0] == 0:
            detail = "empty file, 0 bytes"
        return f"shard {shard}: not a tar file ({detail})"
    kind = error.kind if isinstance(error, _BadHeader) else "truncated"
    if last_key is not None:
        return f"shard {shard}: {kind} after sample {last_key} ({detail}); its later samples are lost"
    return f"shard {shard}: {kind} in its first sample {current_key} ({detail}); its samples are lost"


def shards_listing(root: Path, split: str) -> dict[str, dict[str, Any]]:
    """What a pipeline can depend on instead of a webdataset folder it does not own: per shard of ``split``
    (its path under ``root``) its bytes and modification time, and the md5 of each metadata file present
    (class names, templates, dataset type, nshards.txt). No shard is opened."""
    listing: dict[str, dict[str, Any]] = {}
    for path in [root / CLASSNAMES, root / TEMPLATES, root / DATASET_TYPE, root / split / NSHARDS]:
        if path.is_file():
            listing[path.relative_to(root).as_posix()] = {"md5": hashlib.md5(read_bytes(path)).hexdigest()}
    for shard in shard_files(root, split):
        stat = _stat(shard)
        if stat is not None:  # a missing shard appears in the listing when it arrives
            listing[shard.relative_to(root).as_posix()] = {"bytes": stat[0], "mtime_ns": stat[1]}
    return listing
