"""Params section ``generate`` (demo only): the generated images of coloured shapes and their captions."""

from __future__ import annotations

from clip_study.pipeline.keys import Section, whole

HELD_OUT_MAX = 7  # the demo holds out at most one (colour, shape) pair per colour and shape: 7 of each

GENERATE = Section("generate", "the demo's generated images of coloured shapes and their captions", {
    "seed": whole(0, doc="the drawing of every image and caption"),
    "pretrain_images": whole(1, doc="captioned images the demo's models are pretrained on"),
    "eval_per_class": whole(2, doc="images per class the study runs on"),
    "image_size": whole(8, doc="image side in pixels"),
    "held_out": whole(0, HELD_OUT_MAX, doc="(colour, shape) pairs never shown in pretraining, for the held-out "
                                           "split of zero-shot accuracy"),
    "shape_only_per_class": whole(2, doc="images per shape of the second dataset, whose classes are the shapes "
                                         "alone (each image in a random colour)"),
    "shift_per_class": whole(1, doc="images per class of each shift set (outline, noisy, small: test-only, "
                                    "docs/shift.md)"),
    "captioned_per_class": whole(1, doc="images per class of the caption dataset (all 49 classes), scored by "
                                        "retrieval"),
    "captions_per_image": whole(1, doc="captions of each image of the caption dataset, drawn as the pretraining "
                                       "captions are"),
})
