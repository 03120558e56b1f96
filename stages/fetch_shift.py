"""Stage fetch_shift: a shift set's test-only subset, its classes matched to those of the dataset it shifts from.

The source is read as fetch reads a dataset's (the same skip or fail of damaged shards and bad images, the same
warnings). Each class of the source is matched to the classes of the dataset's subset (``--source-classes``, its
classes.json): by the entry's ``class_map`` file, else by id, else by name (clip_study/data/class_map.py). A class
that matches none is left out with a warning; a matched class without a usable image is dropped with one. Every
kept image is a test image (``max_per_class`` caps them, seeded): the subset has a test split alone, and beside its
classes.json a class_map.json holding each class's source labels. ``--metrics`` receives the counts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clip_study.data import class_map, subset
from clip_study.errors import UserError
from clip_study.files import write_json
from clip_study.metrics_files.fetch_shift import ShiftFetchMetrics
from clip_study.pipeline.fetching import check_images, open_source, warn, warn_each
from clip_study.pipeline.params import for_param, load_params, named_entry
from clip_study.pipeline.sections.shifts import SHIFTS
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"source_classes": REQUIRED, "out": REQUIRED, "metrics": REQUIRED}, argv,
                      per_shift=True)
    short, params = named_entry(load_params(args.params, SHIFTS), "shifts", args.shift)  # checked, `of` too
    key, of = f"shifts.{short}", params["of"]
    if Path(args.source_classes).name != "classes.json":
        raise UserError(f"--source-classes {args.source_classes}: give the classes.json of {of}'s subset")
    source_classes = subset.read_classes(Path(args.source_classes).parent, fix=rebuild(f"fetch@{of}"))

    source = open_source(key, params)
    available = list(dict.fromkeys(example.class_id for example in source.examples))
    with for_param(f"{key}.class_names"):
        names = subset.class_names(available, params["class_names"])
    shift_classes = [{"id": class_id, "name": names[class_id]} for class_id in available]
    with for_param(f"{key}.class_map"):
        matching = class_map.match_classes(shift_classes, source_classes, params["class_map"])
    unmatched = [class_id for class_id, labels in zip(available, matching.matches) if not labels]
    warn_each([f"class '{class_id}' ({names[class_id]}) matches no class of {of}: left out" for class_id in unmatched],
              f"more classes match no class of {of} ({len(unmatched)} in all, listed in {args.metrics})")
    if matching.unused_lines:
        warn(f"{len(matching.unused_lines)} line(s) of {params['class_map']} name an ImageNet class that {of}'s "
             f"subset does not hold (e.g. line {matching.unused_lines[0]}): unused")
    matched = [class_id for class_id, labels in zip(available, matching.matches) if labels]
    if len(matched) < 2:
        raise UserError(f"{key}: {len(matched)} of its {len(available)} classes match a class of {of} (e.g. "
                        f"{shift_classes[0]['id']!r} / {shift_classes[0]['name']!r} against {source_classes[0]['id']!r}"
                        f" / {source_classes[0]['name']!r}); scoring needs at least 2: give {key}.class_map a file "
                        "pairing its classes with the dataset's (docs/shift.md)")

    wanted = set(matched)
    checked = check_images(key, params, [e for e in source.examples if e.class_id in wanted], Path(args.out),
                           args.metrics)
    count = Counter(example.class_id for example in checked.usable)
    dropped = [class_id for class_id in matched if not count[class_id]]
    for class_id in dropped:
        warn(f"class '{class_id}' dropped: no usable image, {checked.bad_per_class()[class_id]} skipped as bad")
    kept = [class_id for class_id in matched if count[class_id]]
    if len(kept) < 2:
        raise UserError(f"{key}.source: {len(kept)} matched class(es) left with a usable image (dropped: {dropped});"
                        " scoring needs at least 2: add images")

    label_of = {class_id: label for label, class_id in enumerate(kept)}
    examples = [example for example in checked.usable if example.class_id in label_of]
    labels = np.array([label_of[example.class_id] for example in examples], dtype=np.int64)
    chosen = subset.cap_per_class(labels, params["max_per_class"], params["seed"])
    examples, labels = [examples[i] for i in chosen], labels[chosen]

    matches = [matching.matches[available.index(class_id)] for class_id in kept]
    subset.write_subset(Path(args.out), examples, labels, [{"id": c, "name": names[c]} for c in kept],
                        {"test": np.arange(len(labels))})
    class_map.write_class_map(args.out, of, len(source_classes), matches)
    write_json(args.metrics, ShiftFetchMetrics(
        images_found=len(source.examples), images_checked=len(checked.usable) + len(checked.bad),
        images_skipped=len(checked.bad), test_images=len(labels), skipped_by_reason=checked.skipped_by_reason(),
        skipped_per_class=dict(sorted(checked.bad_per_class().items())),
        classes_found=len(available), classes_matched=len(matched), classes_unmatched=len(unmatched),
        unmatched_classes=unmatched, classes_kept=len(kept), dropped_classes=dropped,
        source_classes=len(source_classes), source_classes_covered=len({label for labels in matches for label in labels}),
        map_lines_unused=len(matching.unused_lines), empty_classes=source.empty_classes,
        ignored_files=len(source.ignored_files), damaged_samples=len(source.damaged),
    ).to_json())
    print(f"fetch_shift {short}: {len(kept)} of {len(available)} classes matched to {of}'s {len(source_classes)}, "
          f"{len(labels)} test images -> {args.out} ({len(checked.usable) + len(checked.bad)} images decoded in "
          f"{checked.seconds:.1f} s, {len(checked.bad)} skipped)")


if __name__ == "__main__":
    run(main)
