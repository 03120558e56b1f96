"""Stage fetch: choose classes and images from the source and write a stratified train/test subset.

Every image of the chosen classes is fully decoded first (the decode extract will use), in a process per
core, a hub dataset's rows a chunk at a time (usable ones staged as files, so memory stays flat): with
``on_bad_image: skip`` (the default) a bad one (empty, not an image, truncated, not decodable, too
large, unreadable) is left out with a warning, with ``fail`` the run stops on the first; so is a damaged
shard or sample of a webdataset source (a shard cut short keeps the samples before the damage). A class left
with fewer than 2 usable images is dropped with a warning (a stratified split needs 2), or stops the run
when the dataset's ``classes`` lists it by name. ``--metrics`` receives the counts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clip_study.data import subset
from clip_study.errors import UserError
from clip_study.files import write_json
from clip_study.metrics_files.fetch import FetchMetrics
from clip_study.pipeline.fetching import check_images, open_source, warn
from clip_study.pipeline.params import for_param, load_params, named_entry
from clip_study.pipeline.sections.datasets import DATASETS
from clip_study.pipeline.stage import REQUIRED, parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"out": REQUIRED, "templates": REQUIRED, "metrics": REQUIRED}, argv, per_dataset=True)
    short, params = named_entry(load_params(args.params, DATASETS), "datasets", args.dataset)  # checked
    key = f"datasets.{short}"
    seed, test_size, max_per_class = params["seed"], params["test_size"], params["max_per_class"]
    spec = params["classes"]
    subset.import_splitter_early()

    source = open_source(key, params)
    available = list(dict.fromkeys(example.class_id for example in source.examples))
    with for_param(f"{key}.class_names"):
        names = subset.class_names(available, params["class_names"])
    with for_param(f"{key}.classes"):
        chosen = subset.select_classes(available, names, spec, seed)
        subset.check_distinct_names(chosen, names)
    wanted = set(chosen)

    checked = check_images(key, params, [e for e in source.examples if e.class_id in wanted], Path(args.out),
                           args.metrics)  # hub images are staged in the subset folder
    usable, bad, bad_per_class = checked.usable, checked.bad, checked.bad_per_class()

    count = Counter(example.class_id for example in usable)
    dropped = {class_id: count[class_id] for class_id in chosen if count[class_id] < 2}
    for class_id, n in dropped.items():
        why = (f"{n} usable image(s), {bad_per_class[class_id]} skipped as bad; "
               "a stratified train/test split needs at least 2")
        if isinstance(spec, list):
            raise UserError(f"{key}.classes: class '{class_id}' has {why}: add images to it or remove it from "
                            f"{key}.classes")
        warn(f"class '{class_id}' dropped: {why}")
    chosen = [class_id for class_id in chosen if class_id not in dropped]
    if len(chosen) < 2:
        raise UserError(f"{key}.source: {len(chosen)} class(es) left with at least 2 usable images "
                        f"(dropped: {dropped}); zero-shot classification needs at least 2: add images")

    label_of = {class_id: label for label, class_id in enumerate(chosen)}
    examples = [example for example in usable if example.class_id in label_of]
    labels = np.array([label_of[example.class_id] for example in examples], dtype=np.int64)
    kept = subset.cap_per_class(labels, max_per_class, seed)
    examples, labels = [examples[i] for i in kept], labels[kept]
    with for_param(f"{key}.test_size"):
        train, test = subset.split_indices(labels, test_size, seed)

    classes = [{"id": class_id, "name": names[class_id]} for class_id in chosen]
    subset.write_subset(Path(args.out), examples, labels, classes, {"train": train, "test": test})
    write_json(args.templates, {"templates": source.templates})  # the dataset's own (None: it has none)
    write_json(args.metrics, FetchMetrics(
        images_found=len(source.examples), images_checked=len(usable) + len(bad),
        images_skipped=len(bad), images_used=len(train) + len(test),
        train_images=len(train), test_images=len(test),
        skipped_by_reason=checked.skipped_by_reason(),
        skipped_per_class=dict(sorted(bad_per_class.items())),
        classes_found=len(available), classes_kept=len(classes), dropped_classes=dropped,
        empty_classes=source.empty_classes, ignored_files=len(source.ignored_files),
        damaged_samples=len(source.damaged),
    ).to_json())
    print(f"fetch {short}: {len(classes)} classes, {len(train)} train / {len(test)} test images -> {args.out} "
          f"({len(usable) + len(bad)} images decoded in {checked.seconds:.1f} s, {len(bad)} skipped)")


if __name__ == "__main__":
    run(main)
