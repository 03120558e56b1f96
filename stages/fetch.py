"""Stage fetch: choose classes and images from the source and write a stratified train/test subset.

Every image of the chosen classes is fully decoded first (``images.check_image``, the decode extract
will use): with ``data.on_bad_image: skip`` (the default) a bad one (empty, not an image, truncated,
not decodable, too large, unreadable) is left out with a warning, with ``fail`` the run stops on the
first. A class left with fewer than 2 usable images is dropped with a warning (a stratified split
needs 2), or stops the run when ``data.classes`` lists it by name. ``--metrics`` receives the counts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from stages import data, images
from stages.config import UserError, load_params, parse_args, run, section, write_json

WARNING_LINES = 20  # bad images listed one per line; the rest are counted
Skipped = list[tuple[data.Example, images.ImageProblem]]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def usable_examples(examples: list[data.Example], policy: str,
                    metrics: str = "the fetch metrics") -> tuple[list[data.Example], Skipped]:
    """The examples that decode, and the others with their problem; the first bad one is an error
    under ``policy`` 'fail'. Bad ones are warned about one a line, up to WARNING_LINES."""
    usable, bad = [], []
    for example in examples:
        problem = images.check_image(example.source())
        if problem is None:
            usable.append(example)
            continue
        if policy == "fail":
            raise UserError(f"data.on_bad_image is 'fail' and image {example.where()} (class '{example.class_id}') "
                            f"is {problem}; replace or remove it, or set data.on_bad_image: skip")
        if len(bad) < WARNING_LINES:
            warn(f"skipped image {example.where()} (class '{example.class_id}'): {problem}")
        bad.append((example, problem))
    if len(bad) > WARNING_LINES:
        warn(f"... and {len(bad) - WARNING_LINES} more bad images skipped ({len(bad)} in all, counted by reason "
             f"and class in {metrics})")
    return usable, bad


def classes_with_two_images(chosen: list[str], usable: list[data.Example], bad_per_class: Counter,
                            spec: Any) -> tuple[list[str], dict[str, int]]:
    """The chosen classes with at least 2 usable images, and the others with their count. A class
    listed by name in data.classes cannot be dropped: the user asked for it."""
    count = Counter(example.class_id for example in usable)
    short = {class_id: count[class_id] for class_id in chosen if count[class_id] < 2}
    for class_id, n in short.items():
        why = (f"{n} usable image(s), {bad_per_class[class_id]} skipped as bad; "
               "a stratified train/test split needs at least 2")
        if isinstance(spec, list):
            raise UserError(f"data.classes: class '{class_id}' has {why}: add images to it or remove it from "
                            "data.classes")
        warn(f"class '{class_id}' dropped: {why}")
    kept = [class_id for class_id in chosen if class_id not in short]
    if len(kept) < 2:
        raise UserError(f"data.dataset: {len(kept)} class(es) left with at least 2 usable images "
                        f"(dropped: {short}); zero-shot classification needs at least 2: add images")
    return kept, short


def main() -> None:
    args = parse_args(__doc__, {"out": "data/subset", "metrics": "metrics/fetch.json"})
    params = section(load_params(args.params), "data")
    # every value below has been checked by load_params (stages/schema.py)
    seed, test_size, max_per_class = params["seed"], params["test_size"], params.get("max_per_class")
    policy = params.get("on_bad_image", "skip")

    source = data.load_source(str(params["dataset"]), str(params.get("split", "train")))
    for class_id in source.empty_classes:
        warn(f"class folder '{class_id}' has no image files: left out")
    if source.ignored_files:
        warn(f"ignored {len(source.ignored_files)} file(s) without an image suffix or outside the class folders "
             f"(e.g. {source.ignored_files[0]})")
    examples = source.examples
    available = list(dict.fromkeys(example.class_id for example in examples))
    names = data.class_names(available, params.get("class_names"))
    spec = params.get("classes", "all")
    chosen = data.select_classes(available, names, spec, seed)
    data.check_distinct_names(chosen, names)
    wanted = set(chosen)
    examples = [example for example in examples if example.class_id in wanted]

    start = time.perf_counter()
    usable, bad = usable_examples(examples, policy, args.metrics)
    seconds = time.perf_counter() - start
    bad_per_class = Counter(example.class_id for example, _ in bad)
    chosen, dropped = classes_with_two_images(chosen, usable, bad_per_class, spec)

    label_of = {class_id: label for label, class_id in enumerate(chosen)}
    examples = [example for example in usable if example.class_id in label_of]
    labels = np.array([label_of[example.class_id] for example in examples], dtype=np.int64)
    kept = data.cap_per_class(labels, max_per_class, seed)
    examples, labels = [examples[i] for i in kept], labels[kept]
    train, test = data.split_indices(labels, test_size, seed)

    classes = [{"id": class_id, "name": names[class_id]} for class_id in chosen]
    data.write_subset(Path(args.out), examples, labels, classes, {"train": train, "test": test})
    write_json(args.metrics, {
        "images_found": len(source.examples),
        "images_checked": len(usable) + len(bad),
        "images_skipped": len(bad),
        "images_used": len(train) + len(test),
        "train_images": len(train),
        "test_images": len(test),
        "skipped_by_reason": {reason: sum(problem.reason == reason for _, problem in bad)
                              for reason in images.REASONS},
        "skipped_per_class": dict(sorted(bad_per_class.items())),
        "classes_found": len(available),
        "classes_kept": len(classes),
        "dropped_classes": dropped,
        "empty_classes": source.empty_classes,
        "ignored_files": len(source.ignored_files),
    })
    print(f"fetch: {len(classes)} classes, {len(train)} train / {len(test)} test images -> {args.out} "
          f"({len(usable) + len(bad)} images decoded in {seconds:.1f} s, {len(bad)} skipped)")


if __name__ == "__main__":
    run(main)
