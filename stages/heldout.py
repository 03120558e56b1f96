"""Stage heldout (demo): zero-shot top-1 on test images of classes seen in pretraining against
classes held out of it. Held-out classes are (colour, shape) pairs the model never saw captioned:
classifying them is compositional zero-shot, the heart of the CLIP paper. A dataset without any of those
classes (the demo's shapes named by shape alone) gets a file that says so: no held-out class, no groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.features import load_features
from clip_study.data.subset import read_classes
from clip_study.demo.heldout import group_top1
from clip_study.errors import UserError
from clip_study.evaluation.similarity import similarity_scores
from clip_study.files import load_npz, read_json, write_json
from clip_study.metrics_files.heldout import GroupTop1, HeldoutMetrics, HeldoutTemplate
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "features": REQUIRED, "zeroshot": REQUIRED,
                                "zeroshot_metrics": REQUIRED, "held_out": "data/held_out.json", "metrics": REQUIRED},
                      argv)
    names = [c["name"] for c in read_classes(args.subset, fix=rebuild("fetch"))]
    held_out = read_json(args.held_out, fix=rebuild("generate"))["classes"]
    unknown = sorted(set(held_out) - set(names))
    if unknown and len(unknown) < len(held_out):
        raise UserError(f"{args.held_out}: classes {unknown} are not in the subset: keep the dataset's classes: all")
    if unknown:
        held_out = []  # another class space: none of its classes is held out
    group = np.isin(names, held_out)
    image_features, labels = load_features(Path(args.features) / "test.npz", rebuild("extract"), len(names))
    zeroshot = ZeroshotMetrics.from_json(read_json(args.zeroshot_metrics, fix=rebuild("zeroshot")))
    text_features = load_npz(Path(args.zeroshot) / "text_features.npz", fix=rebuild("zeroshot"))

    described = {**{key: result.template for key, result in zeroshot.templates.items()},
                 **{name: f"ensemble {name}" for name in zeroshot.ensembles or {}}}

    def top1(weights: np.ndarray, metric: str) -> GroupTop1:
        return GroupTop1(**group_top1(labels, similarity_scores(image_features, weights, metric), group))

    templates = {key: HeldoutTemplate(template=label, test=top1(text_features[key], "cosine"))
                 for key, label in described.items() if held_out}
    best = text_features[zeroshot.best]
    write_json(args.metrics, HeldoutMetrics(
        num_classes=len(names), chance_top1=round(1 / len(names), 6), held_out_classes=held_out,
        num_held_out_test_images=int(np.isin(labels, np.flatnonzero(group)).sum()),
        templates=templates, best=zeroshot.best, cosine=top1(best, "cosine"), dot=top1(best, "dot"),
    ).to_json())
    if not held_out:
        print(f"heldout: none of the {len(names)} classes is held out of pretraining")
    for key, result in templates.items():
        print(f"heldout: seen {result.test.seen_top1:.4f}  held-out {result.test.held_out_top1:.4f}  {key}")


if __name__ == "__main__":
    run(main)
