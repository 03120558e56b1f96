"""Stage generate (demo only): the synthetic coloured-shape data of the offline demo.

Writes the captioned pretraining set (npz), the evaluation image folder that fetch reads like any
local dataset (all 49 classes, held-out ones included), and the list of held-out classes, which
never occur in pretraining.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from stages import data, shapes
from stages.config import load_params, parse_args, run, section, write_json


def write_pretraining_set(path: Path, images: np.ndarray, captions: list[str], labels: np.ndarray) -> None:
    """npz with ``images`` uint8 (N,S,S,3), ``captions`` a fixed-width unicode array and ``labels``
    int64: no object arrays, so it loads with ``allow_pickle=False``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data.save_npz(path, images=images, captions=np.array(captions, dtype=str), labels=labels.astype(np.int64))


def held_out_record(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Held-out classes as fetch will name them (folder name, underscores -> spaces) and their folders."""
    return {"classes": [shapes.class_name(colour, shape) for colour, shape in pairs],
            "folders": [shapes.folder_name(colour, shape) for colour, shape in pairs]}


def main() -> None:
    args = parse_args(__doc__, {"pretrain": "demo/data/pretrain.npz", "images": "demo/data/shapes",
                                "held_out": "demo/data/held_out.json"})
    params = section(load_params(args.params), "generate")  # ranges checked by load_params
    seed, count, per_class, size = (params[key] for key in ("seed", "pretrain_images", "eval_per_class", "image_size"))
    held_out = shapes.held_out_pairs(seed, params["held_out"])

    images, captions, labels = shapes.pretraining_set(count, seed, held_out, size)
    write_pretraining_set(Path(args.pretrain), images, captions, labels)
    if Path(args.images).exists():  # replaced, as fetch replaces its subset: no stale images of a larger run
        shutil.rmtree(args.images)
    shapes.write_image_folder(Path(args.images), per_class, seed, size)
    write_json(args.held_out, held_out_record(held_out))
    print(f"generate: {count} pretraining images, {per_class} x {len(shapes.all_classes())} evaluation images "
          f"({len(held_out)} classes held out of pretraining) at {size} px")


if __name__ == "__main__":
    run(main)
