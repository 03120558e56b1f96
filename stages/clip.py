"""CLIP loading and encoding with transformers (4.x and 5.x).

Embeddings returned here are the projected, **unnormalised** ones: the similarity stage needs
their norms, and every cosine classifier normalises them itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoConfig, AutoTokenizer, CLIPModel

from stages import pixels
from stages.config import UserError
from stages.schema import PRECISIONS
from stages.hub import load_from_hub


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` prefers cuda, then Apple's mps, then the cpu."""
    if requested != "auto":
        device = torch.device(requested)
        available = {"cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
                     "mps": torch.backends.mps.is_available()}.get(device.type, True)
        if not available:
            raise UserError(f"model.device: '{requested}' is not available on this machine (torch "
                            f"{torch.__version__}); use 'auto' or 'cpu'")
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
    from transformers import AutoImageProcessor  # imported here: it costs ~2 s, and only extract needs it

    return _load(AutoImageProcessor, name, "image processor")


def load_tokenizer(name: str) -> Any:
    return _load(AutoTokenizer, name, "tokenizer")


def _embedding(output: Any) -> torch.Tensor:
    """transformers 4.x returns the embedding tensor; 5.x an output whose pooler_output it is."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is fp16 autocast on cuda and fp32 elsewhere (bf16 measured slower than fp32 on CPUs
    without AMX); int8 is dynamic quantisation, which torch runs on the cpu only."""
    if precision not in PRECISIONS:  # load_params has checked; this guards direct callers
        raise UserError(f"extract.precision: {precision!r} must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "int8" and device.type != "cpu":
        raise UserError(f"extract.precision: 'int8' runs on the cpu only, not {device.type}; "
                        "use fp16 or bf16 there, or set model.device: cpu")
    return precision


def quantize_int8(model: CLIPModel) -> CLIPModel:
    """A copy of ``model`` whose linear layers compute in int8 (weights quantised once, activations
    per batch): image encoding 1.4-2x faster on a CPU (the most with AVX-512 VNNI), features within
    cosine 0.99 of fp32."""
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, not yet removed
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def image_encoder(model: CLIPModel, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from a pixel batch to (B, D) float32 image embeddings at ``precision``
    (one of fp32, int8, fp16, bf16, as returned by ``resolve_precision``)."""
    device = next(model.parameters()).device
    if precision == "int8":
        model = quantize_int8(model)
    autocast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    @torch.inference_mode()
    def encode(pixels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            pooled = model.vision_model(pixel_values=pixels.to(device, non_blocking=True)).pooler_output
            # the projection one image at a time: CPU BLAS rounds a 1-row product differently from a
            # many-row one, and projecting row by row makes the features independent of the batch size
            projected = torch.cat([model.visual_projection(row) for row in pooled.split(1)])
        return projected.float().cpu()

    return encode


def encode_images(encode: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor],
                  total: int, desc: str = "images") -> Iterator[np.ndarray]:
    """Embeddings of the pixel batches, one float32 array per batch, with a progress bar in images."""
    with tqdm(total=total, desc=desc, unit="img") as progress:
        for pixels in batches:
            yield encode(pixels).numpy()
            progress.update(len(pixels))


def encode_image_files(model: CLIPModel, processor: Any, paths: list[Path], batch_size: int,
                       precision: str = "fp32", workers: int = 0) -> np.ndarray:
    """(N, D) float32 embeddings of image files, in order, held in memory (the extract stage streams
    them to shards instead)."""
    preprocess, _ = pixels.preprocessor(processor)
    batches = pixels.pixel_batches(paths, preprocess, batch_size, workers)
    encoded = list(encode_images(image_encoder(model, precision), batches, len(paths)))
    return np.concatenate(encoded) if encoded else np.zeros((0, model.config.projection_dim), dtype=np.float32)


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
