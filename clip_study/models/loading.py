"""Loading a CLIP checkpoint (a hub id or a local directory) with transformers 4.x or 5.x, on the
device asked for, without sitting through minutes of retries when the hub is unreachable."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import AutoConfig, AutoTokenizer, CLIPModel

from clip_study.errors import UserError
from clip_study.hub import load_from_hub


class Clip(NamedTuple):
    """A loaded checkpoint: the model (eval mode, on its device), its tokenizer and image processor."""

    model: CLIPModel
    tokenizer: Any
    processor: Any


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` prefers cuda, then Apple's mps, then the cpu."""
    if requested != "auto":
        device = torch.device(requested)
        available = {"cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
                     "mps": torch.backends.mps.is_available()}.get(device.type, True)
        if not available:
            raise UserError(f"'{requested}' is not available on this machine (torch {torch.__version__}); "
                            "use 'auto' or 'cpu'")
        return device
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
            raise UserError(f"{name} has no loadable {what} ({str(error).splitlines()[0][:120]}); "
                            "a checkpoint directory needs what save_pretrained writes for the model, "
                            "tokenizer and image processor") from error
    if Path(name).suffix or name.startswith((".", "/")) or name.count("/") > 1:
        raise UserError(f"'{name}' is neither a local directory nor a hub id like "
                        "'openai/clip-vit-base-patch32': check the path")
    return load_from_hub(lambda local_only: cls.from_pretrained(name, local_files_only=local_only), "model", name)


def load_model(name: str, device: torch.device | str = "cpu") -> CLIPModel:
    """A CLIP checkpoint (hub id or local directory) in eval mode on ``device``."""
    model_type = _load(AutoConfig, name, "config").model_type
    if model_type != "clip":
        raise UserError(f"'{name}' is a '{model_type}' checkpoint, not a CLIP checkpoint; use a "
                        "CLIP model such as openai/clip-vit-base-patch32")
    return _load(CLIPModel, name, "CLIP weights").to(device).eval()


def load_image_processor(name: str) -> Any:
    """The checkpoint's image processor (without torchvision, transformers 5.x picks its PIL backend)."""
    from transformers import AutoImageProcessor  # imported here: it costs ~2 s, and only images need it

    return _load(AutoImageProcessor, name, "image processor")


def load_tokenizer(name: str) -> Any:
    return _load(AutoTokenizer, name, "tokenizer")


def load_clip(name: str, device: str = "auto") -> Clip:
    """Model, tokenizer and image processor of a checkpoint, the model on ``device`` (``auto``: cuda,
    then mps, then the cpu)."""
    return Clip(load_model(name, pick_device(device)), load_tokenizer(name), load_image_processor(name))


def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of the weights (a changed checkpoint at the same path must not reuse old features)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
