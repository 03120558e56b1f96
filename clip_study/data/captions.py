"""Caption datasets: images, each with any number of captions (Flickr30k, COCO Captions), a dataset kind of their
own, scored by retrieval rather than classification. Read from four kinds of source, chosen as
``sources.load_source`` chooses:

- a hub dataset id: its Image column and its captions column, the one column of lists of texts, else the one
  column of texts (one caption an image);
- a local folder with a captions file, ``<split>.jsonl`` or ``<split>.csv``, else ``captions.jsonl`` or
  ``captions.csv`` (the split then ignored)::

      {"image": "images/0001.jpg", "captions": ["a dog on a beach", "a brown dog running"]}
      {"image": "images/0002.jpg", "caption": "two people on a bench"}

      image,caption                  (a header row, then one row a caption)
      images/0001.jpg,a dog on a beach

  image paths relative to the folder; an image on several lines gathers their captions, in file order, and
  images are in the order of their first line;
- a local folder of a hub dataset's parquet files (streamed in place, as ``tables.ParquetTable`` reads them),
  its columns chosen as a hub dataset's;
- a folder in CLIP_benchmark's webdataset layout of a retrieval dataset (``webdataset.WebdatasetTable`` with
  ``kind=RETRIEVAL``: a ``.txt`` of captions in each sample).

Each image becomes an ``Example`` whose class id is its key, unique within the source (its path under the
folder, its row number, its sample key), so that the image checks of ``sources`` and ``pipeline.fetching`` read
it as any dataset's image; its captions come beside it. A caption dataset's subset is the subset format
(``clip_study.data.subset``: each image its own class, a test split alone) plus ``captions.json``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from clip_study.data import sources, tables, webdataset
from clip_study.data.sources import Example
from clip_study.data.subset import CAPTIONS
from clip_study.errors import BadFileError, UserError, shown
from clip_study.files import CORRECT, read_json, read_table, read_text, write_json

CAPTIONS_STEM = "captions"  # a folder's captions file for any split: captions.jsonl or captions.csv
SUFFIXES = (".jsonl", ".csv")
JSONL_FIX = ('write one JSON object a line: {"image": "<path relative to the folder>", "caption": "<text>"} or '
             '"captions": ["<text>", ...]')
COLUMNS_FIX = "save a copy that keeps one (datasets' remove_columns, then to_parquet) and give its folder"


@dataclass(frozen=True)
class CaptionSource:
    """A caption source's images (as examples) and each one's captions, in source order, and what reading it set
    aside: images without a caption (left out), image files of the folder its captions file does not name, damage
    (webdatasets)."""

    examples: list[Example]
    captions: list[list[str]]  # per example, each a non-empty list of texts
    uncaptioned: list[str] = field(default_factory=list)  # where each image without a caption is: left out
    damaged: list[str] = field(default_factory=list)  # as Source's: one line per damaged shard or sample
    ignored_files: list[Path] = field(default_factory=list)  # image files of the folder no caption names

    def warnings(self) -> list[str]:
        """What was set aside, one line each: images without a caption and ignored files (a line for all), damage."""
        lines = []
        if self.uncaptioned:
            lines.append(f"left out {len(self.uncaptioned)} image(s) without a caption (e.g. {self.uncaptioned[0]})")
        if self.ignored_files:
            lines.append(f"ignored {len(self.ignored_files)} image file(s) of the folder that its captions file does "
                         f"not name (e.g. {self.ignored_files[0]})")
        return lines + [f"skipped {line}" for line in self.damaged]


def load_caption_source(source: str, split: str) -> CaptionSource:
    """Every image and its captions of one split of a caption source: a local folder (a captions file, else a
    retrieval webdataset, else parquet files) or a hub dataset."""
    if not sources.is_folder(source):
        dataset = sources.load_hub_split(source, split)
        image_column, captions_column, names = caption_columns(dataset.features.to_dict(), list(dataset.features),
                                                               f"'{source}' split '{split}'")
        return _column_source(tables.DatasetTable(dataset, f"{source} {split}", image_column, captions_column, names))
    root = Path(source)
    file = captions_file(root, split)
    if file is not None:
        return read_caption_folder(root, file)
    if webdataset.has_shards(root):
        table = webdataset.WebdatasetTable(root, split, kind=webdataset.RETRIEVAL)
        return _rows_source(table, table.label_names, table.captions, table.damaged)
    if tables.data_files(root):
        return _column_source(tables.parquet_table(root, split, caption_columns))
    raise UserError(f"folder {root} holds no captions file ({', '.join(_names(split))}), no webdataset split "
                    "(<split>/0.tar) and no parquet files; give a folder of images with a captions file, or a caption "
                    "dataset's webdataset or parquet folder")


def _names(split: str) -> list[str]:
    """The captions files a folder may hold for ``split``, in the order they are looked for."""
    return [f"{stem}{suffix}" for stem in dict.fromkeys([split, CAPTIONS_STEM]) for suffix in SUFFIXES]


# -- hub datasets and parquet folders ---------------------------------------------------------------------------

def _is_text(feature: Any) -> bool:
    return isinstance(feature, dict) and feature.get("_type") == "Value" and \
        feature.get("dtype") in ("string", "large_string")


def _is_texts(feature: Any) -> bool:
    """A list of texts: List, Sequence or LargeList of a string Value, or the older bare list ``[Value]``."""
    if isinstance(feature, list):
        return len(feature) == 1 and _is_text(feature[0])
    return isinstance(feature, dict) and feature.get("_type") in ("List", "Sequence", "LargeList") and \
        _is_text(feature.get("feature"))


def _described(features: dict[str, Any], columns: list[str]) -> str:
    """Each column with its kind, for messages: 'image: Image, caption: list of texts, id: int64'."""
    def kind(feature: Any) -> str:
        if _is_text(feature) or _is_texts(feature):
            return "text" if _is_text(feature) else "list of texts"
        if isinstance(feature, dict):
            return str(feature.get("dtype") or feature.get("_type"))
        return "list" if isinstance(feature, list) else "no datasets feature"
    return ", ".join(f"{column}: {kind(features.get(column))}" for column in columns)


def caption_columns(features: dict[str, Any], columns: list[str], where: str) -> tuple[str, str, list[str]]:
    """A caption table's Image column and its captions column (the one column of lists of texts, else the one
    column of texts), from its features in the datasets library's JSON form; no label names."""
    images = [name for name, feature in features.items()
              if isinstance(feature, dict) and feature.get("_type") == "Image"]
    candidates = [name for name, feature in features.items() if _is_texts(feature)] or \
        [name for name, feature in features.items() if _is_text(feature)]
    if not images or not candidates:
        missing = "no image column" if not images else "no captions column (a list of texts, or a text)"
        raise UserError(f"{where} has {missing} (columns: {_described(features, columns)}, as written by the datasets "
                        "library); use a caption dataset: an Image column and a column of captions")
    for kind, found in (("Image", images), ("captions", candidates)):
        if len(found) > 1:
            raise UserError(f"{where} has {len(found)} candidate {kind} columns ({_described(features, found)}) and "
                            f"no way to tell which to read; {COLUMNS_FIX}")
    return images[0], candidates[0], []


def _column_source(table: tables.Table) -> CaptionSource:
    """A hub-format table's images and captions (its label column: a text or a list of texts a row), each image
    keyed by its row number."""
    captions = []
    for row, value in enumerate(table.values(table.label_column)):
        texts = [] if value is None else [value] if isinstance(value, str) else list(value)
        for number, text in enumerate(texts, 1):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"{table.row_name(row)}: caption {number} of column '{table.label_column}' is "
                                f"{shown(text, 40)}, not a text; fix the dataset's files (every caption a text) or "
                                "use another dataset")
        captions.append(texts)
    return _rows_source(table, [str(row) for row in range(len(captions))], captions)


def _rows_source(table: tables.Table, keys: list[str], captions: list[list[str]],
                 damaged: list[str] | None = None) -> CaptionSource:
    """Examples referencing a table's rows (read when checked), each with its captions; a row without a caption
    is left out, and two rows of one key are an error (the key names the image in the subset)."""
    examples, kept, uncaptioned, first = [], [], [], {}
    for row, (key, texts) in enumerate(zip(keys, captions)):
        if key in first:
            raise UserError(f"{table.row_name(first[key])} and {table.row_name(row)} share the key {shown(key)}; "
                            "give each image its own key (a webdataset sample's: its name up to the first dot)")
        first[key] = row
        if texts:
            examples.append(Example(class_id=key, name=table.row_name(row), table=table, row=row))
            kept.append(texts)
        else:
            uncaptioned.append(table.row_name(row))
    return CaptionSource(examples, kept, uncaptioned, list(damaged or []))


# -- a folder with a captions file ------------------------------------------------------------------------------

def captions_file(root: Path, split: str) -> Path | None:
    """The folder's captions file of ``split``: ``<split>.jsonl`` or ``<split>.csv``, else ``captions.jsonl`` or
    ``captions.csv``; None when it has none. Two for one split leave unclear which to read: an error."""
    for stem in dict.fromkeys([split, CAPTIONS_STEM]):
        found = [root / f"{stem}{suffix}" for suffix in SUFFIXES if (root / f"{stem}{suffix}").is_file()]
        if len(found) > 1:
            raise UserError(f"folder {root} holds both {found[0].name} and {found[1].name}: either could hold the "
                            f"captions of split '{split}'; keep one")
        if found:
            return found[0]
    return None


def read_caption_folder(root: Path, file: Path) -> CaptionSource:
    """The images a captions file names (paths relative to ``root``), in the order of their first line, each with
    the captions of all its lines, in file order."""
    captions: dict[str, list[str]] = {}
    for number, image, texts in (_jsonl_lines(file) if file.suffix == ".jsonl" else _csv_lines(file)):
        key = _image_key(file, number, image)
        if key not in captions:
            path = root / key
            if not path.is_file():
                problem = "is a folder" if path.is_dir() else "not found"
                raise BadFileError(file, f"line {number}: image {shown(image)} {problem} in {root}",
                                   "correct its path (relative to the folder) or remove the line")
            captions[key] = []
        captions[key] += texts
    if not captions:
        raise BadFileError(file, "names no image", JSONL_FIX if file.suffix == ".jsonl" else
                           "write a header row 'image,caption', then a row per caption")
    ignored = [path for path in sources.image_files(root) if path.relative_to(root).as_posix() not in captions]
    return CaptionSource([Example(class_id=key, path=root / key) for key in captions], list(captions.values()),
                         ignored_files=ignored)


def _image_key(file: Path, number: int, image: Any) -> str:
    """An image's path relative to the folder, normalised ('./a/../b.png' is 'b.png'), so that two spellings of
    one image are one image; it must stay inside the folder."""
    if not isinstance(image, str) or not image.strip():
        raise BadFileError(file, f"line {number}: image {shown(image, 40)} is not a path", JSONL_FIX
                           if file.suffix == ".jsonl" else "write the image's path relative to the folder")
    key = posixpath.normpath(image)
    if posixpath.isabs(key) or key == ".." or key.startswith("../") or key == ".":
        raise BadFileError(file, f"line {number}: image {shown(image)} is not a file inside the folder",
                           "give its path relative to the folder, inside it")
    return key


def _checked_caption(file: Path, number: int, text: Any, which: str) -> str:
    """A caption as written, refused when it is not a text or is blank."""
    if not isinstance(text, str):
        raise BadFileError(file, f"line {number}: {which} is {shown(text, 40)}, not a text", JSONL_FIX)
    if not text.strip():
        raise BadFileError(file, f"line {number}: {which} is empty", "write the caption or remove it")
    return text


def _jsonl_lines(file: Path) -> Iterator[tuple[int, Any, list[str]]]:
    """(line number, image, captions) of each non-blank line of a JSON lines captions file."""
    for number, line in enumerate(read_text(file).split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise BadFileError(file, f"line {number}: not valid JSON (column {error.colno}: {error.msg})",
                               JSONL_FIX) from error
        keys = [key for key in ("caption", "captions") if isinstance(value, dict) and key in value]
        if not isinstance(value, dict) or "image" not in value or len(keys) != 1:
            found = f"has the keys {sorted(value)}" if isinstance(value, dict) else f"is {shown(value, 40)}"
            raise BadFileError(file, f"line {number}: {found}, not \"image\" and one of \"caption\", \"captions\"",
                               JSONL_FIX)
        if keys == ["caption"]:
            texts = [_checked_caption(file, number, value["caption"], "the caption")]
        elif not isinstance(value["captions"], list) or not value["captions"]:
            raise BadFileError(file, f"line {number}: \"captions\" is {shown(value['captions'], 40)}, not a list of "
                                     "one caption or more", JSONL_FIX)
        else:
            texts = [_checked_caption(file, number, text, f"caption {index} of \"captions\"")
                     for index, text in enumerate(value["captions"], 1)]
        yield number, value["image"], texts


def _csv_lines(file: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, image, [caption]) of each row of a CSV captions file (columns image and caption)."""
    for number, row in read_table(file, ["image", "caption"]):
        if not row["caption"].strip():
            raise BadFileError(file, f"line {number}: the caption is empty", "write the caption or remove the row")
        yield number, row["image"], [row["caption"]]


# -- the subset's captions.json ---------------------------------------------------------------------------------

def write_captions(subset: Path, captions: list[list[str]]) -> None:
    """Each image's captions, in label order, as ``<subset>/captions.json`` (written after the subset's images and
    tables: the subset writer clears the folder)."""
    write_json(Path(subset) / CAPTIONS, {"captions": captions})


def read_captions(subset: str | Path, fix: str | None = None) -> list[list[str]]:
    """Each image's captions, in label order, checked against the subset's test.csv (``fix``: what to say when
    the file is damaged)."""
    path = Path(subset) / CAPTIONS
    captions = read_json(path, expect=dict, fix=fix)["captions"]
    images = len(read_table(Path(subset) / "test.csv", ["file", "label"], fix=fix))
    if not isinstance(captions, list) or len(captions) != images:
        raise BadFileError(path, f"'captions' is not a list of one list of captions per image of test.csv ({images})",
                           fix or CORRECT)
    for index, texts in enumerate(captions):
        if not (isinstance(texts, list) and texts and all(isinstance(text, str) and text.strip() for text in texts)):
            raise BadFileError(path, f"'captions' entry {index} is {shown(texts, 40)}, not a non-empty list of "
                                     "non-empty texts", fix or CORRECT)
    return captions


def prompted_captions(captions: list[list[str]], template: str | None) -> tuple[list[str], np.ndarray]:
    """Every caption in image order, put in ``template`` (``{}`` where the caption goes; None: as given), and the
    image index of each: what embed_captions encodes, and the right answers of retrieval."""
    texts = [caption if template is None else template.replace("{}", caption)
             for image in captions for caption in image]
    return texts, np.repeat(np.arange(len(captions)), [len(image) for image in captions]).astype(np.int64)


def folder_listing(root: Path) -> dict[str, dict[str, Any]]:
    """Per entry of a caption folder (its captions files, its image folders): how many files, their bytes and a
    digest of their names, sizes and modification times, with no file opened: it changes whenever an image or a
    caption does, so that the main pipeline's fetch_captions can depend on it (as ``sources.folder_listing``)."""
    listing = {}
    for entry in sorted(path for path in root.iterdir() if not path.name.startswith(".")):
        files = [entry] if entry.is_file() else sorted(
            path for path in entry.rglob("*") if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(root).parts))
        digest = hashlib.blake2b(digest_size=16)
        for file in files:
            stat = file.stat()
            digest.update(f"{file.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        listing[entry.name] = {"files": len(files), "bytes": sum(file.stat().st_size for file in files),
                               "digest": digest.hexdigest()}
    return listing
