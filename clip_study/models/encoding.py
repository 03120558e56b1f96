"""Images and texts to embeddings, for every model family (``families``).

Embeddings returned here are the projected, **unnormalised** ones: the norms matter for the comparison
of cosine with the raw dot product, and every cosine classifier normalises them itself.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm
from clip_study.data.images import open_rgb
from clip_study.errors import UserError
from clip_study.models import pixels
from clip_study.models.families import embedding_dim, family_of
from clip_study.models.towers import ImageTower, image_tower
from clip_study.models.loading import check_tokenizer

CHECK_IMAGES = 8  # first images of a run on which the lean preprocessing and half weights are checked


def _embedding(output: Any) -> torch.Tensor:
    """transformers 4.x returns the embedding tensor; 5.x an output whose pooler_output it is."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def quantize_int8(tower: ImageTower) -> ImageTower:
    """A copy of ``tower`` whose linear layers compute in int8 (weights quantised once, activations
    per batch): image encoding 1.4-2x faster on a CPU (the most with AVX-512 VNNI), features within
    cosine 0.99 of fp32."""
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, not yet removed
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(tower, {torch.nn.Linear}, dtype=torch.qint8)


HALF_WEIGHTS_MIN_COSINE = 0.9999  # half-precision weights are used only where features stay this close to fp32
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


class ImageEncoder:
    """Pixel batches to (B, D) float32 image embeddings on the model's device, at ``precision`` (fp32, int8,
    fp16 or bf16, as returned by ``precision.resolve_precision``).

    On the cpu every image goes through the tower's head alone (CLIP's projection, SigLIP's pooling head):
    BLAS rounds a 1-row product differently from a many-row one, so this makes the features independent of
    the batch size. On a GPU the head runs once per batch, and fp16/bf16 run on a half-precision copy of
    the image tower where, on
    ``sample`` (a few images, as the workers send them), its features stay within cosine
    ``HALF_WEIGHTS_MIN_COSINE`` of fp32; else (or without a sample) under autocast. ``prepare`` turns what
    the workers sent into float pixels on the device (the lean path's lookup table). ``mode`` says which
    of these runs (for logs and shard keys)."""

    def __init__(self, model: Any, precision: str, prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 sample: torch.Tensor | None = None, log: Callable[[str], None] = print) -> None:
        self.device = next(model.parameters()).device
        self.prepare = prepare or (lambda pixels: pixels.float())
        self.per_row = self.device.type == "cpu"
        self.tower = image_tower(model)
        self.input_dtype, self.autocast = torch.float32, None
        if precision == "int8":
            self.tower = quantize_int8(self.tower)
        elif precision in HALF and (self.per_row or sample is None or not self._use_half_weights(precision, sample,
                                                                                                  log)):
            self.autocast = HALF[precision]
        weights = "half weights" if self.input_dtype != torch.float32 else "autocast" if self.autocast else "weights"
        self.mode = f"{precision} {weights}, head {'per row' if self.per_row else 'per batch'}"

    def _use_half_weights(self, precision: str, sample: torch.Tensor, log: Callable[[str], None]) -> bool:
        """Switch to a ``precision`` copy of the image tower if it matches fp32 on ``sample``; say so either way."""
        reference, dtype, tower = self(sample), HALF[precision], self.tower
        self.tower, self.input_dtype = copy.deepcopy(tower).to(dtype), dtype
        cosine = float(torch.nn.functional.cosine_similarity(self(sample), reference).min())
        if cosine >= HALF_WEIGHTS_MIN_COSINE:
            log(f"{precision} weights: features within cosine {cosine:.6f} of fp32 on {len(sample)} images")
            return True
        log(f"{precision} weights: cosine {cosine:.6f} to fp32 on {len(sample)} images "
            f"(< {HALF_WEIGHTS_MIN_COSINE}): computing under autocast instead")
        self.tower, self.input_dtype = tower, torch.float32
        return False

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = self.prepare(pixels.to(self.device, non_blocking=True)).to(self.input_dtype)
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            hidden = self.tower.trunk(pixels)
            if self.per_row:
                return torch.cat([self.tower.head(row) for row in hidden.split(1)]).float()
            return self.tower.head(hidden).float()


def image_encoder(model: Any, precision: str) -> ImageEncoder:
    """An ``ImageEncoder`` of float pixel batches (a notebook's way in; half precision runs under autocast)."""
    return ImageEncoder(model, precision)


def prepare_run(model: Any, processor: Any, paths: list[Path], precision: str,
                log: Callable[[str], None] = print) -> tuple[pixels.Preprocessing, ImageEncoder]:
    """The preprocessing and encoder for encoding ``paths``, decided on their first ``CHECK_IMAGES`` images
    (so every run on the same paths decides alike, resumed or not)."""
    images = [open_rgb(path) for path in paths[:CHECK_IMAGES]]
    preprocessing = pixels.choose_preprocessing(processor, images, warn=log)
    sample = torch.stack([torch.from_numpy(preprocessing.in_worker(image)) for image in images]) if images else None
    return preprocessing, ImageEncoder(model, precision, preprocessing.on_device, sample, log)


def encode_batches(encode: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor],
                   total: int, desc: str = "images") -> Iterator[np.ndarray]:
    """Embeddings of the pixel batches, one float32 array per batch, with a progress bar in images. Each batch's
    features are copied back after the next batch is queued, so a GPU is never left waiting for the cpu."""
    with tqdm(total=total, desc=desc, unit="img") as progress:
        pending = None
        for pixels in batches:
            features = encode(pixels)
            if pending is not None:
                yield _checked(pending.cpu().numpy(), progress)
            pending = features
        if pending is not None:
            yield _checked(pending.cpu().numpy(), progress)


def _checked(features: np.ndarray, progress: tqdm) -> np.ndarray:
    if not np.isfinite(features).all():
        raise UserError(f"the model gave NaN or infinite features for images {progress.n}-"
                        f"{progress.n + len(features) - 1} of {progress.desc}: the computation overflows at this "
                        "precision; use fp32 (or bf16)")
    progress.update(len(features))
    return features


def encode_images(model: Any, processor: Any, paths: list[Path], batch_size: int = 64,
                  precision: str = "fp32", workers: int = 0) -> np.ndarray:
    """(N, D) float32 embeddings of image files, in order, held in memory (extraction streams them to
    shards instead). The same features as the extract stage's for the same precision."""
    preprocessing, encode = prepare_run(model, processor, paths, precision)
    batches = pixels.pixel_batches(paths, preprocessing.in_worker, batch_size, workers, encode.device.type == "cuda")
    encoded = list(encode_batches(encode, pixels.to_device_ahead(batches, encode.device), len(paths)))
    return np.concatenate(encoded) if encoded else np.zeros((0, embedding_dim(model)), dtype=np.float32)


@torch.inference_mode()
def encode_texts(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 text embeddings, padded as the family was trained: CLIP to the batch's longest text,
    not to 77 tokens (5x faster for short prompts, same embeddings: it pools the end-of-text token);
    SigLIP to its full length (it pools the last position)."""
    check_tokenizer(model, tokenizer)
    device = next(model.parameters()).device
    limit = model.config.text_config.max_position_embeddings
    padding = "max_length" if family_of(model).pad_texts_to_max_length else True
    batches = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[start:start + batch_size], padding=padding, truncation=True,
                           max_length=limit, return_tensors="pt").to(device)
        output = model.get_text_features(**{key: tokens[key] for key in ("input_ids", "attention_mask")
                                            if key in tokens})
        batches.append(_embedding(output).float().cpu())
    return torch.cat(batches).numpy()
