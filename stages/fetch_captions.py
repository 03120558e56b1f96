"""Stage fetch_captions: a caption dataset's test-only subset, each image its own class, with every caption it has.

The source (clip_study/data/captions.py: a hub dataset, a folder with a captions file, a parquet or a retrieval
webdataset folder) is read as fetch reads a dataset's: the same skip or fail of damaged shards and bad images, the
same warnings; an image without a caption is left out with a warning, a bad image with its captions. ``max_images``
caps the usable images by a seeded choice that keeps their source order. The subset is the one fetch writes (image
i has label i, its class named by its key in the source, a test split alone; extract encodes it unchanged) plus
captions.json, each image's captions in label order. ``--metrics`` receives the counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data import subset
from clip_study.data.captions import load_caption_source, write_captions
from clip_study.errors import UserError
from clip_study.files import write_json
from clip_study.metrics_files.fetch_captions import CaptionFetchMetrics
from clip_study.pipeline.fetching import check_images, open_source
from clip_study.pipeline.params import load_params, named_entry
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.stage import REQUIRED, parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"out": REQUIRED, "metrics": REQUIRED}, argv, per_caption_set=True)
    short, params = named_entry(load_params(args.params, CAPTIONS), "captions", args.captions)  # checked
    key = f"captions.{short}"

    source = open_source(key, params, load_caption_source)
    checked = check_images(key, params, source.examples, Path(args.out), args.metrics, by_class=False)
    captions_of = dict(zip((example.class_id for example in source.examples), source.captions))  # keys are unique
    if len(checked.usable) < 2:
        raise UserError(f"{key}.source: {len(checked.usable)} usable image(s) with a caption ({len(checked.bad)} "
                        f"skipped as bad); retrieval needs at least 2: add images")
    kept = np.arange(len(checked.usable))
    if params["max_images"] is not None and len(kept) > params["max_images"]:  # seeded, in source order
        kept = np.sort(np.random.default_rng(params["seed"]).choice(len(kept), params["max_images"], replace=False))
    examples = [checked.usable[i] for i in kept.tolist()]
    captions = [captions_of[example.class_id] for example in examples]

    count = len(examples)
    subset.write_subset(Path(args.out), examples, np.arange(count),
                        [{"id": example.class_id, "name": example.class_id} for example in examples],
                        {"test": np.arange(count)})
    write_captions(Path(args.out), captions)
    per_image = [len(texts) for texts in captions]
    write_json(args.metrics, CaptionFetchMetrics(
        images_found=len(source.examples) + len(source.uncaptioned), captions_found=sum(map(len, source.captions)),
        images_checked=len(checked.usable) + len(checked.bad), images_skipped=len(checked.bad),
        images_without_captions=len(source.uncaptioned), images=count, captions=sum(per_image),
        captions_per_image_min=min(per_image), captions_per_image_max=max(per_image),
        skipped_by_reason=checked.skipped_by_reason(), ignored_files=len(source.ignored_files),
        damaged_samples=len(source.damaged),
    ).to_json())
    print(f"fetch_captions {short}: {count} test images, {sum(per_image)} captions ({min(per_image)} to "
          f"{max(per_image)} an image) -> {args.out} ({len(checked.usable) + len(checked.bad)} images decoded in "
          f"{checked.seconds:.1f} s, {len(checked.bad)} skipped)")


if __name__ == "__main__":
    run(main)
