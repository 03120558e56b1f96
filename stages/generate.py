"""Stage generate (demo only): the synthetic coloured-shape data of the offline demo.

Writes the captioned pretraining set (npz), the evaluation image folder that fetch reads like any
local dataset (all 49 classes, held-out ones included), a second one whose classes are the 7 shapes alone
(a class space of its own), the list of held-out classes, which never occur in pretraining, the shift sets
(``--shift-sets``/<outline, noisy, small>: the classes drawn otherwise, test-only, read by fetch_shift) and the
caption dataset (``--captions``: images of every class, each with several captions in test.jsonl, read by
fetch_captions).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from clip_study.demo import shapes
from clip_study.files import write_json
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.sections.generate import GENERATE
from clip_study.pipeline.stage import parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"pretrain": "data/pretrain.npz", "images": "data/shapes",
                                "shape_only": "data/shape_only", "held_out": "data/held_out.json",
                                "shift_sets": "data/shift_sets", "captions": "data/shape_captions"}, argv)
    params = section(load_params(args.params, GENERATE), "generate")  # ranges checked by load_params
    seed, count, per_class, size = (params[key] for key in ("seed", "pretrain_images", "eval_per_class", "image_size"))
    held_out = shapes.held_out_pairs(seed, params["held_out"])

    images, captions, labels = shapes.pretraining_set(count, seed, held_out, size)
    shapes.write_pretraining_set(Path(args.pretrain), images, captions, labels)
    for folder in (args.images, args.shape_only, args.shift_sets, args.captions):  # replaced, as fetch does a subset
        if Path(folder).exists():
            shutil.rmtree(folder)
    shapes.write_image_folder(Path(args.images), per_class, seed, size)
    shapes.write_shape_folder(Path(args.shape_only), params["shape_only_per_class"], seed, size)
    write_json(args.held_out, shapes.held_out_record(held_out))
    start = time.perf_counter()
    shifted = shapes.write_shift_sets(Path(args.shift_sets), params["shift_per_class"], seed, size)
    seconds = time.perf_counter() - start
    captioned, captions_written = shapes.write_caption_set(Path(args.captions), params["captioned_per_class"],
                                                           params["captions_per_image"], seed, size)  # drawn last
    print(f"generate: {count} pretraining images, {per_class} x {len(shapes.all_classes())} evaluation images "
          f"({len(held_out)} classes held out of pretraining), {params['shape_only_per_class']} x {len(shapes.SHAPES)} "
          f"shapes alone, at {size} px; shift sets {', '.join(f'{name} {n}' for name, n in shifted.items())} images "
          f"in {seconds:.1f} s; caption set {captioned} images with {captions_written} captions")


if __name__ == "__main__":
    run(main)
