"""Hub-format tables: one split of a Hugging Face image-classification or caption dataset, loaded by
``datasets`` (a hub id) or read straight from a folder of its parquet files (a downloaded dataset repository), a
column at a time.

The label column (a caption dataset's: its captions column) is read whole (a few bytes a row: class choice,
cap and split need nothing else); the image column is read in chunks of rows and only for the rows asked for,
so no caller ever holds every image's bytes. A parquet folder is read with pyarrow, not
``datasets.load_dataset``: datasets would first copy every file into its Arrow cache (another copy of the
whole dataset on disk, ~150 GB for ImageNet), where pyarrow streams the files in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from clip_study.errors import UserError

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_CHUNK = 1000  # image rows read at a time
DATA_SUFFIX = ".parquet"

# How a table's columns are chosen from its features (the datasets library's, in their JSON form), its column
# names and where it is (for messages): (image column, label column, label names)
ColumnChoice = Callable[[dict[str, Any], list[str], str], tuple[str, str, list[str]]]


class Table:
    """One split of an image-classification table: its label names, its labels, its images by row. (A caption
    table's label column holds each row's captions, read by ``values``; it has no label names.)"""

    def __init__(self, name: str, image_column: str, label_column: str, label_names: list[str]) -> None:
        self.name, self.image_column, self.label_column = name, image_column, label_column
        self.label_names = label_names

    def labels(self) -> np.ndarray:
        """The class index of every row, in row order."""
        raise NotImplementedError

    def values(self, column: str) -> list[Any]:
        """Every row's value of a small column (not the images), in row order."""
        raise NotImplementedError

    def _chunks(self, wanted: np.ndarray) -> Iterator[tuple[int, pa.Array]]:
        """(first row, image column of the rows from there) for consecutive chunks covering every row in
        ``wanted``, in row order; chunks without a wanted row may be skipped."""
        raise NotImplementedError

    def images(self, rows: Sequence[int]) -> Iterator[tuple[int, bytes | None, str | None]]:
        """(row, encoded bytes, stored path) of each of ``rows`` (ascending), read chunk by chunk."""
        wanted = np.asarray(rows, dtype=np.int64)
        if np.any(np.diff(wanted) <= 0):
            raise ValueError("rows must be ascending and distinct")
        for start, column in self._chunks(wanted):
            inside = wanted[np.searchsorted(wanted, start):np.searchsorted(wanted, start + len(column))]
            if len(inside):
                for row, value in zip(inside.tolist(), column.take(inside - start).to_pylist()):
                    yield (row, *_bytes_and_path(value))

    def row_name(self, row: int) -> str:
        """Where a row is, for messages."""
        return f"{self.name} example {row}"

    def read(self, row: int) -> bytes | Path | None:
        """One row's image: its bytes, else its local file (reads the chunk that holds it)."""
        _, data, path = next(self.images([row]))
        return data if data is not None else Path(path) if path else None


def _any_between(wanted: np.ndarray, start: int, stop: int) -> bool:
    """Whether the ascending ``wanted`` holds a row in [start, stop)."""
    return bool(np.searchsorted(wanted, start) < np.searchsorted(wanted, stop))


def _bytes_and_path(value: Any) -> tuple[bytes | None, str | None]:
    """An Image column's value, stored as datasets does ({bytes, path}) or as bare bytes or a path."""
    if isinstance(value, dict):
        return value.get("bytes"), value.get("path")
    return (value, None) if isinstance(value, bytes) else (None, value)


class DatasetTable(Table):
    """A ``datasets.Dataset`` (memory-mapped Arrow: slicing it reads nothing until a value is taken)."""

    def __init__(self, dataset: Any, name: str, image_column: str, label_column: str,
                 label_names: list[str] | None = None) -> None:
        """``label_names``: by default the names of the label column's ClassLabel."""
        super().__init__(name, image_column, label_column,
                         dataset.features[label_column].names if label_names is None else label_names)
        self._arrow = dataset.with_format("arrow")

    def labels(self) -> np.ndarray:
        return np.asarray(self._arrow[self.label_column].to_numpy(), dtype=np.int64)

    def values(self, column: str) -> list[Any]:
        return self._arrow[column].to_pylist()

    def _chunks(self, wanted: np.ndarray) -> Iterator[tuple[int, pa.Array]]:
        for start in range(0, len(self._arrow), ROWS_PER_CHUNK):
            stop = min(start + ROWS_PER_CHUNK, len(self._arrow))
            if _any_between(wanted, start, stop):
                yield start, self._arrow[start:stop][self.image_column]


class ParquetTable(Table):
    """A split's parquet files (a downloaded hub dataset), streamed in place a row group at a time."""

    def __init__(self, files: list[Path], name: str, choose: ColumnChoice | None = None) -> None:
        """``choose``: how the image and label columns are found (default: an image-classification dataset's)."""
        import pyarrow.parquet as pq

        self.files = files
        schema = pq.read_schema(files[0])
        image_column, label_column, names = (choose or classification_columns)(_hub_features(schema), schema.names,
                                                                               str(files[0]))
        super().__init__(name, image_column, label_column, names)

    def labels(self) -> np.ndarray:
        import pyarrow.parquet as pq

        return np.concatenate([pq.ParquetFile(file).read(columns=[self.label_column]).column(0).to_numpy()
                               for file in self.files]).astype(np.int64)

    def values(self, column: str) -> list[Any]:
        import pyarrow.parquet as pq

        return [value for file in self.files for value in pq.ParquetFile(file).read(columns=[column]).column(0)
                .to_pylist()]

    def _chunks(self, wanted: np.ndarray) -> Iterator[tuple[int, pa.Array]]:
        import pyarrow.parquet as pq

        start = 0
        for file in self.files:
            reader = pq.ParquetFile(file)
            sizes = [reader.metadata.row_group(group).num_rows for group in range(reader.metadata.num_row_groups)]
            starts = start + np.concatenate([[0], np.cumsum(sizes)])
            needed = [_any_between(wanted, starts[g], starts[g + 1]) for g in range(len(sizes))]
            for first, groups in _runs(needed):  # consecutive row groups with a wanted row; the others unread
                row = int(starts[first])
                for batch in reader.iter_batches(ROWS_PER_CHUNK, row_groups=groups, columns=[self.image_column]):
                    yield row, batch.column(0)
                    row += batch.num_rows
            start = int(starts[-1])


def _runs(flags: list[bool]) -> Iterator[tuple[int, list[int]]]:
    """(first index, indices) of each run of consecutive True values in ``flags``."""
    run: list[int] = []
    for index, flag in enumerate([*flags, False]):
        if flag:
            run.append(index)
        elif run:
            yield run[0], run
            run = []


def classification_columns(features: dict[str, Any], columns: list[str], where: str) -> tuple[str, str, list[str]]:
    """An image-classification table's first Image column, its first ClassLabel column and that one's names."""
    image_column = next((k for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "Image"), None)
    label_column = next((k for k, v in features.items()
                         if isinstance(v, dict) and v.get("_type") == "ClassLabel" and "names" in v), None)
    if image_column is None or label_column is None:
        raise UserError(f"{where} has no image column and class-label column (columns: {columns}, "
                        "as written by the datasets library); use an image-classification dataset")
    return image_column, label_column, list(features[label_column]["names"])


def _hub_features(schema: pa.Schema) -> dict[str, dict[str, Any]]:
    """The datasets library's feature types, stored in a parquet file's schema metadata ({} without)."""
    try:
        return json.loads((schema.metadata or {})[b"huggingface"])["info"]["features"]
    except (KeyError, TypeError, ValueError):
        return {}


def data_files(root: Path) -> list[Path]:
    """The parquet files under ``root`` (hidden ones skipped), sorted by path as datasets orders shards."""
    return sorted(file for file in root.rglob(f"*{DATA_SUFFIX}")
                  if not any(part.startswith(".") for part in file.relative_to(root).parts))


def split_of(file: Path, root: Path) -> str:
    """The split a data file holds, by the hub's naming: the file name's first word
    (``data/valid-00000-of-00001.parquet``, ``valid.parquet``) or its folder (``default/valid/0000.parquet``)."""
    name = file.name.split(".")[0]
    if "-" in name:
        return name.split("-")[0]
    return name if file.parent == root or file.parent.name == "data" else file.parent.name


def parquet_table(root: Path, split: str, choose: ColumnChoice | None = None) -> ParquetTable:
    """The table of ``split`` in a folder of a hub dataset's parquet files (``choose``: as ParquetTable's)."""
    files = data_files(root)
    chosen = [file for file in files if split_of(file, root) == split]
    if not chosen:
        splits = sorted({split_of(file, root) for file in files})
        raise UserError(f"folder {root} holds no parquet file of split '{split}' (it has {splits}); "
                        "choose one of those splits")
    return ParquetTable(chosen, f"{root} {split}", choose)
