"""Stage fetch: choose classes and images from the source and write a stratified train/test subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages import data
from stages.config import UserError, integer, load_params, parse_args, run, section


def check_fraction(test_size: object) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise UserError(f"data.test_size: {test_size!r} must be a fraction between 0 and 1 (e.g. 0.2)")
    return float(test_size)


def main() -> None:
    args = parse_args(__doc__, {"out": "data/subset"})
    params = section(load_params(args.params), "data")
    seed = integer(params, "data", "seed", minimum=0)
    test_size = check_fraction(params.get("test_size"))
    max_per_class = None if params.get("max_per_class") is None else integer(params, "data", "max_per_class", 2)

    examples = data.load_examples(str(params["dataset"]), str(params.get("split", "train")))
    available = list(dict.fromkeys(example.class_id for example in examples))
    names = data.class_names(available, params.get("class_names"))
    chosen = data.select_classes(available, names, params.get("classes", "all"), seed)

    label_of = {class_id: label for label, class_id in enumerate(chosen)}
    examples = [example for example in examples if example.class_id in label_of]
    labels = np.array([label_of[example.class_id] for example in examples], dtype=np.int64)
    kept = data.cap_per_class(labels, max_per_class, seed)
    examples, labels = [examples[i] for i in kept], labels[kept]
    train, test = data.split_indices(labels, test_size, seed)

    classes = [{"id": class_id, "name": names[class_id]} for class_id in chosen]
    data.write_subset(Path(args.out), examples, labels, classes, {"train": train, "test": test})
    print(f"fetch: {len(classes)} classes, {len(train)} train / {len(test)} test images -> {args.out}")


if __name__ == "__main__":
    run(main)
