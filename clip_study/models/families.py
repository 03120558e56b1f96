"""Model families: the dual encoders the pipeline evaluates, behind one small interface.

A family says which transformers class loads a checkpoint, how its image tower splits into a batched trunk
and a per-image head (so CPU features stay independent of the batch size), how its texts are padded, and
how zero-shot scores become probabilities. Everything else (extraction, prompts, probes) is shared:

- ``hf_clip``: CLIP checkpoints in transformers format (OpenAI's, and LAION's or MetaCLIP's conversions);
  softmax over the classes of ``logit_scale x cosine``; texts padded to the longest in a batch (CLIP pools
  its end-of-text token, so padding never changes an embedding).
- ``hf_siglip``: SigLIP and SigLIP 2 checkpoints of fixed resolution (model type ``siglip``); an independent
  sigmoid per class of ``logit_scale x cosine + logit_bias``; texts padded to the model's full length, as
  SigLIP was trained (it pools the last position).

``auto`` picks the family from the checkpoint's ``model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clip_study.errors import UserError

AUTO = "auto"


@dataclass(frozen=True)
class Family:
    """What differs between dual encoders, as plain data: the model class per model type, how zero-shot logits
    become probabilities, how texts are padded, the image tower's class, and what the family loads and how
    its models were trained (in words, for messages and reports)."""

    name: str
    classes: dict[str, str]  # model_type -> transformers model class
    probabilities: str  # how zero-shot logits become probabilities: "softmax" over classes or "sigmoid" each
    pad_texts_to_max_length: bool
    tower: str  # the ImageTower class in clip_study.models.towers (imported when used: it needs torch)
    describes: str
    objective: str  # the pretraining loss, in words (for reports)

    def model_class(self, model_type: str) -> Any:
        import transformers

        return getattr(transformers, self.classes[model_type])


FAMILIES = {
    "hf_clip": Family("hf_clip", {"clip": "CLIPModel"}, "softmax", False, "ClipImageTower",
                      "CLIP checkpoints in transformers format", "contrastive softmax loss"),
    "hf_siglip": Family("hf_siglip", {"siglip": "SiglipModel"}, "sigmoid", True, "SiglipImageTower",
                        "SigLIP and fixed-resolution SigLIP 2 checkpoints", "sigmoid loss"),
}
# model types a user may try that no family loads, with the fix
NOT_LOADED = {
    "siglip2": "SigLIP 2's NaFlex checkpoints (model type siglip2) take variable-size patch sequences, which the "
               "pipeline does not feed: use a fixed-resolution SigLIP 2 checkpoint (e.g. "
               "google/siglip2-base-patch16-224, model type siglip)",
}


def family_names() -> list[str]:
    return [AUTO, *FAMILIES]


def resolve_family(requested: str, model_type: str, checkpoint: str) -> Family:
    """The family that loads a checkpoint of ``model_type``: the one ``requested``, checked, or for ``auto``
    the one whose model types include it."""
    matching = next((family for family in FAMILIES.values() if model_type in family.classes), None)
    if matching is None and model_type in NOT_LOADED:
        raise UserError(f"'{checkpoint}': {NOT_LOADED[model_type]}")
    if matching is None:
        known = "; ".join(f"{f.name}: {f.describes}, model type {', '.join(f.classes)}" for f in FAMILIES.values())
        raise UserError(f"'{checkpoint}' is a '{model_type}' checkpoint, which no model family loads ({known}): "
                        "use a CLIP or SigLIP checkpoint")
    if requested not in (AUTO, matching.name):
        if requested not in FAMILIES:
            raise UserError(f"family {requested!r} is not one of {', '.join(family_names())}")
        raise UserError(f"'{checkpoint}' is a '{model_type}' checkpoint, which family {requested} does not load: "
                        f"set the family to {matching.name} (or {AUTO})")
    return matching


def family_of(model: Any) -> Family:
    """The family of a loaded model (by its config's model type)."""
    return resolve_family(AUTO, model.config.model_type, type(model).__name__)


def embedding_dim(model: Any) -> int:
    """The length of the model's image (and text) embeddings."""
    config = model.config
    return int(config.projection_dim if family_of(model).name == "hf_clip" else config.vision_config.hidden_size)


def parameter_count(model: Any) -> int:
    return int(sum(parameter.numel() for parameter in model.parameters()))
