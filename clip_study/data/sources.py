"""Image sources: a Hugging Face dataset id (default ``zh-plus/tiny-imagenet``), a local folder in
imagefolder layout (one sub-folder per class; see ``scan_folder`` for nested folders, hidden files and
symlinks), a local folder of a hub dataset's parquet files or one in CLIP_benchmark's webdataset layout
(``clip_study.data.webdataset``), read as a list of examples; which of them
decode, checked in a pool of processes; and a small listing of a folder that changes whenever its images do."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from PIL import Image

from clip_study.data import tables, webdataset
from clip_study.data.images import ImageProblem, check_image
from clip_study.errors import UserError
from clip_study.hub import could_be_hub_id, load_from_hub

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CHECK_CHUNK = 32     # images per task sent to a checking process: small messages, few round trips
MIN_POOLED = 256     # fewer images are checked in this process: starting the pool would cost more
TASKS_PER_WORKER = 4  # tasks in flight per process: enough to keep it busy, few to hold in memory

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Example:
    """One image of the source and its class id: a file, encoded bytes, or a row of a hub-format table
    (whose bytes ``check_examples`` reads a chunk of rows at a time, so that no list holds them all)."""

    class_id: str
    path: Path | None = None
    data: bytes | None = None
    name: str | None = None  # where it is, for messages (default: the path)
    table: tables.Table | None = None
    row: int | None = None
    staged: bool = False  # path is a file fetch wrote itself (a table row's bytes): moved, never linked

    def suffix(self) -> str:
        source = self.source()
        return source.suffix.lower() if isinstance(source, Path) else suffix_of(source)

    def source(self) -> Path | bytes | None:
        """What ``images.open_rgb`` and ``images.check_image`` read (a table row: read here, one at a time)."""
        if self.path is not None or self.data is not None:
            return self.path if self.path is not None else self.data
        return self.table.read(self.row) if self.table is not None else None

    def where(self) -> str:
        return self.name or str(self.path)


@dataclass(frozen=True)
class Source:
    """A source's examples and what scanning it set aside (folders), or found damaged (webdatasets)."""

    examples: list[Example]
    empty_classes: list[str] = field(default_factory=list)  # class folders without image files
    ignored_files: list[Path] = field(default_factory=list)  # non-image files, files outside class folders
    templates: list[str] | None = None  # the dataset's own zero-shot templates, with {} for the class name
    # shards and samples that could not be read (missing, not a tar, cut short; no image, no or a bad .cls):
    # one line each naming the shard and the sample or member; their images are not among the examples
    damaged: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """What was set aside, one line each: empty class folders, ignored files (one line for all), damage."""
        ignored = [f"ignored {len(self.ignored_files)} file(s) without an image suffix or outside the class "
                   f"folders (e.g. {self.ignored_files[0]})"] if self.ignored_files else []
        return ([f"class folder '{class_id}' has no image files: left out" for class_id in self.empty_classes]
                + ignored + [f"skipped {line}" for line in self.damaged])


def is_folder(dataset: str) -> bool:
    """Whether ``dataset`` names a local folder (else it must be a hub id)."""
    if Path(dataset).is_dir():
        return True
    if not could_be_hub_id(dataset):
        raise UserError(f"'{dataset}' is neither a local folder nor a hub id like 'zh-plus/tiny-imagenet': "
                        "check the path")
    return False


def suffix_of(data: bytes) -> str:
    """The file suffix of encoded image bytes, by their format (reads the header only)."""
    image_format = Image.open(io.BytesIO(data)).format or "png"
    return {"JPEG": ".jpg"}.get(image_format, "." + image_format.lower())


def load_source(dataset: str, split: str) -> Source:
    """All examples of a local image folder, of one split of a local parquet or webdataset folder, or of a
    hub dataset."""
    if is_folder(dataset):
        if is_webdataset(Path(dataset)):
            table = webdataset.WebdatasetTable(Path(dataset), split)
            return Source(table_examples(table), damaged=table.damaged,
                          templates=webdataset.dataset_templates(Path(dataset)))
        if is_parquet_folder(Path(dataset)):
            return Source(table_examples(tables.parquet_table(Path(dataset), split)))
        return scan_folder(Path(dataset))
    return Source(load_hub_examples(dataset, split))


def is_parquet_folder(root: Path) -> bool:
    """Whether ``root`` holds a hub dataset's parquet files rather than class sub-folders of images: parquet
    files present and no sub-folder with an image file. (Neither: ``scan_folder`` says what is missing.)"""
    if any(holds_image(Path(folder.path)) for folder in _visible(root) if folder.is_dir()):
        return False
    return bool(tables.data_files(root))


def is_webdataset(root: Path) -> bool:
    """Whether ``root`` is in CLIP_benchmark's webdataset layout: a split folder of shards and no class folder of
    images (an image folder that holds a tar stays an image folder)."""
    return webdataset.has_shards(root) and not any(
        holds_image(Path(entry.path)) for entry in _visible(root) if entry.is_dir())


def holds_image(folder: Path) -> bool:
    """Whether ``folder`` or a folder under it holds an image file (a class folder of an image folder)."""
    return _holds_image(folder, seen=set())


def _holds_image(folder: Path, seen: set[tuple[int, int]]) -> bool:
    """Whether ``folder`` or a folder under it holds an image file; stops at the first (symlink loops once)."""
    key = (folder.stat().st_dev, folder.stat().st_ino)
    if key in seen:
        return False
    seen.add(key)
    entries = _visible(folder)
    return (any(_suffix(entry.name) in IMAGE_SUFFIXES and not entry.is_dir() for entry in entries)
            or any(_holds_image(Path(entry.path), seen) for entry in entries if entry.is_dir()))


def scan_folder(root: Path) -> Source:
    """Imagefolder layout: each sub-folder of ``root`` is a class; its image files are found by suffix
    (any case), recursively in nested folders (as torchvision's ImageFolder), in sorted order.

    Hidden files and folders (.DS_Store, .git) are skipped; symlinked files and folders are followed,
    each real folder once per class (no loop). Which files are images is decided by suffix here and by
    decoding in ``check_examples``, so a PNG named .jpg is fine."""
    examples, empty, ignored = [], [], []
    for entry in _visible(root):
        folder = Path(entry.path)
        if not entry.is_dir():
            ignored.append(folder)  # a file outside any class folder
            continue
        images = _image_files(folder, ignored, seen=set())
        examples += [Example(class_id=folder.name, path=file) for file in images]
        if not images:
            empty.append(folder.name)
    classes = {example.class_id for example in examples}
    if not classes:
        raise UserError(f"folder {root} has 0 class folders with images and no parquet files: give a folder "
                        "with one sub-folder of images per class, or a hub dataset's folder (data/<split>-*.parquet)")
    if len(classes) < 2:
        raise UserError(f"folder {root} has {len(classes)} class folder(s) with images; "
                        "zero-shot classification needs at least 2 (one sub-folder of images per class)")
    return Source(examples, empty, ignored)


def _visible(folder: Path) -> list[os.DirEntry]:
    """Entries of ``folder`` not hidden, sorted by name. Their ``is_dir()`` and ``is_file()`` come from the
    directory listing itself, with no stat per file (ImageNet's train split is 1.28 M files)."""
    try:
        with os.scandir(folder) as entries:
            return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda e: e.name)
    except OSError as error:
        raise UserError(f"cannot list folder {folder} ({error.strerror}): "
                        "fix its permissions or move it out of the dataset") from error


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (by suffix, any depth), as ``scan_folder`` finds a class folder's."""
    return _image_files(folder, [], seen=set())


def _image_files(folder: Path, ignored: list[Path], seen: set[tuple[int, int]]) -> list[Path]:
    """Image files under ``folder``, depth first in name order; other files go to ``ignored``.
    ``seen`` holds the real folders visited, so a symlink loop is entered once."""
    key = (folder.stat().st_dev, folder.stat().st_ino)
    if key in seen:
        return []
    seen.add(key)
    files = []
    for entry in _visible(folder):
        if entry.is_dir():
            files += _image_files(Path(entry.path), ignored, seen)
        elif _suffix(entry.name) in IMAGE_SUFFIXES:
            files.append(Path(entry.path))  # a broken symlink too: check_examples reports it as unreadable
        elif entry.is_file():
            ignored.append(Path(entry.path))
    return files


def _suffix(name: str) -> str:
    """A file name's suffix in lower case (as ``Path(name).suffix`` for every name with an image suffix)."""
    return os.path.splitext(name)[1].lower()


def load_hub_split(dataset: str, split: str) -> Any:
    """One split of a hub dataset as a ``datasets.Dataset`` (memory-mapped: nothing is read yet), from the local
    cache alone when the hub cannot be reached."""
    import datasets

    def load(local_only: bool) -> Any:
        if local_only:  # datasets reads the offline switch from its config module, not the call
            import huggingface_hub.constants
            datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
        return datasets.load_dataset(dataset, split=split)

    return load_from_hub(load, "dataset", dataset)


def load_hub_examples(dataset: str, split: str) -> list[Example]:
    """A hub dataset's split as examples that reference its rows (its first Image column, its first
    ClassLabel); only the label column is read here."""
    import datasets

    table = load_hub_split(dataset, split)
    image_column = next((k for k, v in table.features.items() if isinstance(v, datasets.Image)), None)
    label_column = next((k for k, v in table.features.items() if isinstance(v, datasets.ClassLabel)), None)
    if image_column is None or label_column is None:
        raise UserError(f"'{dataset}' has no image column and class-label column "
                        f"(columns: {list(table.features)}); use an image-classification dataset")
    return table_examples(tables.DatasetTable(table, f"{dataset} {split}", image_column, label_column))


def table_examples(table: tables.Table) -> list[Example]:
    """One example per row of ``table``, from its label column alone."""
    names = table.label_names
    return [Example(class_id=names[label], name=table.row_name(row), table=table, row=row)
            for row, label in enumerate(table.labels().tolist())]


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_examples(examples: list[Example], stop_at_first_bad: bool = False, staging: Path | None = None,
                   workers: int | None = None, chunk: int = CHECK_CHUNK,
                   ) -> tuple[list[Example], list[tuple[Example, ImageProblem]]]:
    """The examples that decode fully (the decode extraction will use), and the others with their problem,
    both in source order; with ``stop_at_first_bad`` it returns at the first bad one and checks no more.

    The checks run in ``workers`` processes (default: every core this process may use, or this process
    alone for fewer than MIN_POOLED images), ``chunk`` images per task: files are sent by path. Table rows
    are read a chunk of rows at a time; a usable row's bytes are written to ``staging`` (as
    ``<row><suffix>``, returned as a staged file example) so that memory stays flat, or, without
    ``staging``, kept in the returned example."""
    if workers is None:
        workers = usable_cores() if len(examples) >= MIN_POOLED else 1
    usable, bad = [], []
    tasks = _check_tasks(examples, staging, chunk)
    with closing(ordered_map(_check_chunk, tasks, workers)) as done:
        for batch, results in done:
            for (example, source), (problem, staged) in zip(batch, results):
                if problem is not None:
                    bad.append((example, problem))
                    if stop_at_first_bad:
                        return usable, bad
                elif staged is not None:
                    usable.append(dataclasses.replace(example, path=Path(staged), staged=True))
                elif example.table is not None:  # a row stored as a local file, or bytes kept in memory
                    usable.append(dataclasses.replace(example, **({"path": source} if isinstance(source, Path)
                                                                  else {"data": source})))
                else:
                    usable.append(example)
    return usable, bad


def _check_tasks(examples: list[Example], staging: Path | None, chunk: int,
                 ) -> Iterator[tuple[list[tuple[Example, Any]], list[tuple[Any, str | None]]]]:
    """Tasks of ``chunk`` images, in order: (the examples with what was read for each, kept here; what a
    checking process receives: each file's path or bytes, and where to stage it)."""
    batch: list[tuple[Example, Any]] = []
    payload: list[tuple[Any, str | None]] = []
    if staging is not None and any(example.table is not None for example in examples):
        staging.mkdir(parents=True, exist_ok=True)
    for example, source in _sources(examples):
        stage = None
        if example.table is not None and isinstance(source, bytes) and staging is not None:
            stage = os.path.join(staging, f"{example.row:09d}")
        batch.append((example, source))
        payload.append((str(source) if isinstance(source, Path) else source, stage))
        if len(batch) == chunk:
            yield batch, payload
            batch, payload = [], []
    if batch:
        yield batch, payload


def _sources(examples: list[Example]) -> Iterator[tuple[Example, Path | bytes | None]]:
    """Each example with what its check reads, table rows read a chunk of rows at a time."""
    for table, group in itertools.groupby(examples, key=lambda example: example.table):
        group = list(group)
        if table is None:
            yield from ((example, example.source()) for example in group)
            continue
        for example, (_, data, path) in zip(group, table.images([example.row for example in group])):
            yield example, data if data is not None else Path(path) if path else None


def _check_chunk(payload: list[tuple[str | bytes | None, str | None]],
                 ) -> list[tuple[ImageProblem | None, str | None]]:
    """Run in a checking process: each image's problem (None if it decodes) and, for usable bytes given a
    staging name, the file they were written to."""
    results = []
    for source, stage in payload:
        if source is None:
            results.append((ImageProblem("unreadable", "the row holds neither bytes nor a path"), None))
            continue
        problem = check_image(source)
        if problem is None and stage is not None:
            stage += suffix_of(source)
            with open(stage, "wb") as file:
                file.write(source)
        results.append((problem, stage if problem is None else None))
    return results


def ordered_map(function: Callable[[T], R], tasks: Iterable[tuple[Any, T]], workers: int,
                ) -> Iterator[tuple[Any, R]]:
    """(key, function(payload)) for each (key, payload) of ``tasks``, in order. With more than one worker
    the calls run in a pool of processes, at most TASKS_PER_WORKER tasks each in flight (memory stays flat,
    whatever the number of tasks); closing the iterator early cancels the tasks not yet started.

    The processes start by forkserver, not fork: the caller may hold threads (torch's, pyarrow's, a test
    runner's), and a process forked from a threaded one can deadlock on a lock some thread held; the
    forkserver is a fresh single-threaded process (started once, ~0.3 s) that forks the workers."""
    if workers <= 1:
        yield from ((key, function(payload)) for key, payload in tasks)
        return
    context = get_context("forkserver")
    context.set_forkserver_preload(["clip_study.data.sources"])  # each worker starts with PIL imported
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    pending: deque = deque()
    try:
        for key, payload in tasks:
            pending.append((key, pool.submit(function, payload)))
            if len(pending) >= TASKS_PER_WORKER * workers:
                key, future = pending.popleft()
                yield key, future.result()
        while pending:
            key, future = pending.popleft()
            yield key, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # waits only for the tasks already running


def folder_listing(root: Path) -> dict[str, dict[str, Any]]:
    """Per class folder of ``root``: how many image files it holds, their bytes, and a digest of their
    names, sizes and modification times. Small even for ImageNet (one row per class) and read without
    opening an image, yet it changes whenever an image is added, removed, replaced or edited, so a
    pipeline can depend on it instead of on a folder it does not own. (A parquet folder: ``files_listing``; a
    webdataset folder: ``webdataset.shards_listing``.)"""
    listing = {}
    examples = scan_folder(root).examples  # grouped by class folder, in order
    for class_id, group in itertools.groupby(examples, key=lambda example: example.class_id):
        digest, count, size = hashlib.blake2b(digest_size=16), 0, 0
        for example in group:
            try:
                stat = os.stat(example.path)
            except OSError:  # a broken symlink: check_examples reports it, the listing records it
                stat = os.lstat(example.path)
            digest.update(f"{example.path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
                          .encode())
            count, size = count + 1, size + stat.st_size
        listing[class_id] = {"images": count, "bytes": size, "digest": digest.hexdigest()}
    return listing


def files_listing(root: Path) -> dict[str, dict[str, int]]:
    """Per parquet file of a hub dataset's folder (its path under ``root``): its bytes and modification
    time, which change whenever the file is replaced or edited. No file is opened."""
    return {file.relative_to(root).as_posix(): {"bytes": file.stat().st_size, "mtime_ns": file.stat().st_mtime_ns}
            for file in tables.data_files(root)}
