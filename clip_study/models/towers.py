"""The image side of each model family as one module, split where a CPU's batched products stop matching
per-image ones (see ``encoding.ImageEncoder``)."""

from __future__ import annotations

from typing import Any

import torch

from clip_study.models.families import family_of


class ImageTower(torch.nn.Module):
    """A model's image side, split where a CPU's batched products stop matching per-image ones: ``trunk``
    runs on whole batches (its products have many rows per image), ``head`` maps the trunk's output to the
    embedding and is run one image at a time on the cpu (see ``encoding.ImageEncoder``)."""

    def trunk(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ClipImageTower(ImageTower):
    """CLIP: the vision transformer's pooled class token, then the linear projection."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection

    def trunk(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixel_values=pixels).pooler_output

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(hidden)


class SiglipImageTower(ImageTower):
    """SigLIP: the vision transformer's normalised token states, then its attention-pooling head (whose
    products have one row per image)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        # transformers 5.x wraps the transformer in a SiglipVisionModel; 4.x holds the transformer itself
        self.vision = getattr(model.vision_model, "vision_model", model.vision_model)

    def trunk(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.vision
        return vision.post_layernorm(vision.encoder(inputs_embeds=vision.embeddings(pixels)).last_hidden_state)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.vision.head(hidden)


def image_tower(model: Any) -> ImageTower:
    """The model's image tower, of its family's class."""
    return globals()[family_of(model).tower](model)
