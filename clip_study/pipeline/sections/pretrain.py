"""Params section ``pretrain`` (demo only): the small CLIP and SigLIP trained on the generated captions."""

from __future__ import annotations

from typing import Any

from clip_study.errors import UserError
from clip_study.pipeline.keys import Section, real, whole


def check_widths(values: dict[str, Any]) -> None:
    for key in ("vision_hidden", "text_hidden"):
        if values[key] % values["heads"]:
            raise UserError(f"pretrain.{key}: {values[key]} must be divisible by pretrain.heads ({values['heads']})")


PRETRAIN = Section("pretrain", "the demo's small models and their training", {
    "seed": whole(0, doc="initialisation and batches"),
    "steps": whole(1, doc="AdamW steps"),
    "batch_size": whole(2, doc="captioned images per step (the contrastive batch)"),
    "lr": real(doc="peak learning rate (linear warm-up, then cosine decay)"),
    "warmup_steps": whole(0, doc="steps of linear warm-up"),
    "weight_decay": real(positive=False, doc="AdamW weight decay"),
    "vocab_size": whole(2, doc="largest tokenizer vocabulary trained on the captions"),
    "vision_hidden": whole(1, doc="image transformer width"),
    "vision_layers": whole(1, doc="image transformer layers"),
    "patch_size": whole(1, doc="image patch side in pixels (must divide the image size)"),
    "text_hidden": whole(1, doc="text transformer width"),
    "text_layers": whole(1, doc="text transformer layers"),
    "heads": whole(1, doc="attention heads of both towers"),
    "projection_dim": whole(1, doc="embedding dimension"),
    "max_text_length": whole(1, doc="text positions"),
}, cross_check=check_widths)
