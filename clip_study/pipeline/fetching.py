"""What fetch, fetch_shift and fetch_captions share: an entry's source read (a datasets, shifts or captions entry:
the same keys for where the images are) and the images kept fully decoded, with the same skip-or-fail of damage and
bad images and the same warnings, so that a shift set or a caption dataset is read exactly as a dataset is."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from clip_study.data import images, sources, subset
from clip_study.errors import UserError
from clip_study.pipeline.params import for_param

WARNING_LINES = 20  # bad images listed one per line; the rest are counted
S = TypeVar("S")  # a source as read: sources.Source, captions.CaptionSource (its damaged lines and warnings())


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def warn_each(lines: list[str], rest: str) -> None:
    """A warning per line, the first WARNING_LINES of them, then how many more (``rest``: what they are)."""
    for line in lines[:WARNING_LINES]:
        warn(line)
    if len(lines) > WARNING_LINES:
        warn(f"... and {len(lines) - WARNING_LINES} {rest}")


def open_source(key: str, entry: dict[str, Any], load: Callable[[str, str], S] = sources.load_source) -> S:
    """The source of entry ``key`` (e.g. 'datasets.tiny_imagenet'), read by ``load(source, split)`` (a caption
    dataset's: ``captions.load_caption_source``), its damage warned of, or stopping the run under
    ``on_bad_image: fail``."""
    with for_param(f"{key}.source"):
        source = load(str(entry["source"]), str(entry["split"]))
    if source.damaged and entry["on_bad_image"] == "fail":
        raise UserError(f"{key}.on_bad_image is 'fail' and {source.damaged[0]}; download or rebuild the shard, "
                        f"or set {key}.on_bad_image: skip")
    warn_each(source.warnings(), "more damaged shards or samples skipped")
    return source


@dataclass(frozen=True)
class Checked:
    """The examples that decode, the others with their problem, and the seconds the checks took."""

    usable: list[sources.Example]
    bad: list[tuple[sources.Example, images.ImageProblem]]
    seconds: float

    def bad_per_class(self) -> Counter:
        return Counter(example.class_id for example, _ in self.bad)

    def skipped_by_reason(self) -> dict[str, int]:
        return {reason: sum(problem.reason == reason for _, problem in self.bad) for reason in images.REASONS}


def check_images(key: str, entry: dict[str, Any], examples: list[sources.Example], out: Path,
                 metrics: str, by_class: bool = True) -> Checked:
    """Decode ``examples`` fully (the decode extract will use), hub images staged in the subset folder ``out``
    (an earlier subset there removed): a bad one is skipped with a warning, or stops the run under
    ``on_bad_image: fail``. ``metrics``: the file that counts the skipped ones, for the warning; ``by_class``:
    whether the messages name each image's class (not a caption dataset's: each image is its own)."""
    fail = entry["on_bad_image"] == "fail"
    start, staging = time.perf_counter(), subset.start_subset(out)
    usable, bad = sources.check_examples(examples, fail, staging)
    seconds = time.perf_counter() - start

    def image(example: sources.Example) -> str:
        return f"image {example.where()}" + (f" (class '{example.class_id}')" if by_class else "")

    if fail and bad:
        example, problem = bad[0]
        raise UserError(f"{key}.on_bad_image is 'fail' and {image(example)} is {problem}; replace or remove it, or "
                        f"set {key}.on_bad_image: skip")
    warn_each([f"skipped {image(example)}: {problem}" for example, problem in bad],
              f"more bad images skipped ({len(bad)} in all, counted by reason{' and class' if by_class else ''} in "
              f"{metrics})")
    return Checked(usable, bad, seconds)
