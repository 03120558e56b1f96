"""CLIP loading and encoding with transformers (4.x and 5.x).

Embeddings returned here are the projected, **unnormalised** ones: the similarity stage needs
their norms, and every cosine classifier normalises them itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, CLIPModel

from stages.config import UserError
from stages.hub import load_from_hub


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` prefers cuda, then Apple's mps, then the cpu."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _load(cls: Any, name: str, what: str) -> Any:
    """``cls.from_pretrained(name)`` from a local directory, the cache, or (if reachable) the hub."""
    if Path(name).is_dir():
        try:
            return cls.from_pretrained(name)
        except OSError as error:
            raise UserError(f"model.name: {name} has no loadable {what} ({str(error).splitlines()[0][:120]}); "
                            "a checkpoint directory needs what save_pretrained writes for the model, "
                            "tokenizer and image processor") from error
    if Path(name).suffix or name.startswith((".", "/")) or name.count("/") > 1:
        raise UserError(f"model.name: '{name}' is neither a local directory nor a hub id like "
                        "'openai/clip-vit-base-patch32': check the path")
    return load_from_hub(lambda local_only: cls.from_pretrained(name, local_files_only=local_only),
                         "model", name, "model.name")


def load_model(name: str, device: torch.device) -> CLIPModel:
    """A CLIP checkpoint (hub id or local directory) in eval mode on ``device``."""
    model_type = _load(AutoConfig, name, "config").model_type
    if model_type != "clip":
        raise UserError(f"model.name: '{name}' is a '{model_type}' checkpoint, not a CLIP checkpoint; use a "
                        "CLIP model such as openai/clip-vit-base-patch32")
    return _load(CLIPModel, name, "CLIP weights").to(device).eval()


def load_image_processor(name: str) -> Any:
    """The checkpoint's image processor (without torchvision, transformers 5.x picks its PIL backend)."""
    return _load(AutoImageProcessor, name, "image processor")


def load_tokenizer(name: str) -> Any:
    return _load(AutoTokenizer, name, "tokenizer")


def _embedding(output: Any) -> torch.Tensor:
    """transformers 4.x returns the embedding tensor; 5.x an output whose pooler_output it is."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@torch.inference_mode()
def encode_images(model: CLIPModel, processor: Any, paths: list[Path],
                  batch_size: int, desc: str = "images") -> np.ndarray:
    """(N, D) float32 image embeddings, in the order of ``paths``."""
    device = next(model.parameters()).device
    batches = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch"):
        images = [open_rgb(path) for path in paths[start:start + batch_size]]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        batches.append(_embedding(model.get_image_features(pixel_values=pixels)).float().cpu())
    dim = model.config.projection_dim
    return torch.cat(batches).numpy() if batches else np.zeros((0, dim), dtype=np.float32)


@torch.inference_mode()
def encode_texts(model: CLIPModel, tokenizer: Any, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 text embeddings; each batch padded to its longest text, not to 77 tokens
    (5x faster for short prompts)."""
    device = next(model.parameters()).device
    limit = model.config.text_config.max_position_embeddings
    batches = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                           max_length=limit, return_tensors="pt").to(device)
        output = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        batches.append(_embedding(output).float().cpu())
    return torch.cat(batches).numpy()
