"""Pretraining the demo's small CLIP or SigLIP from scratch on the generated captioned shapes, with
transformers' own loss (CLIP's contrastive softmax, SigLIP's pairwise sigmoid): a fixed number of steps (not a
wall-time budget), seeded initialisation and batches, so the same settings give the same model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from transformers import CLIPModel, SiglipModel

from clip_study.errors import UserError

LOG_EVERY = 25  # steps per entry of training_log.json
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the learned temperature at 100 (SigLIP likewise here)


def preprocess_pixels(images: np.ndarray, processor: Any) -> torch.Tensor:
    """(N, 3, S, S) float32 pixel values, equal to what ``processor`` gives the same images at evaluation.

    The processor works image by image in PIL (about 1 ms each); this does the whole uint8 array
    with a few in-place tensor ops. Resize and centre crop are identities when the images already have the
    processor's size, which is the only case supported here.
    """
    size = images.shape[1]
    if not processor.do_resize:
        resize_to = (size, size)
    elif "shortest_edge" in processor.size:  # CLIP: shortest edge, then a centre crop
        resize_to = (processor.size["shortest_edge"],) * 2
    else:  # SigLIP: straight to (height, width)
        resize_to = (processor.size["height"], processor.size["width"])
    crop = ((processor.crop_size["height"], processor.crop_size["width"])
            if getattr(processor, "do_center_crop", False) else (size, size))
    if images.shape[1] != images.shape[2] or resize_to != (size, size) or crop != (size, size):
        raise ValueError(f"images of shape {images.shape[1:3]} need resizing or cropping to "
                         f"{resize_to}/{crop}: generate them at the processor's size")
    # channels first while still uint8, then in-place float ops: 0.7 s for 40k images, against 8 s
    # for out-of-place ops on the channels-last view (each allocates another 0.5 GB)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().float()
    if processor.do_rescale:
        pixels.mul_(processor.rescale_factor)
    if processor.do_normalize:
        pixels.sub_(torch.tensor(processor.image_mean, dtype=torch.float32).view(1, 3, 1, 1))
        pixels.div_(torch.tensor(processor.image_std, dtype=torch.float32).view(1, 3, 1, 1))
    return pixels


def tokenize(tokenizer: Any, captions: list[str], max_length: int,
             pad_to_max_length: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of every caption, padded to the longest one, or to ``max_length``.

    Captions repeat a few hundred phrasings, so only the distinct ones go through the tokenizer.
    A caption longer than the model's positions would lose its end-of-text token, where CLIP pools.
    SigLIP pools the last position instead, so evaluation pads its texts to ``max_length`` (its positions);
    ``tokenize_for_last_position`` gives training the same embeddings in a few positions.
    """
    distinct, index = np.unique(np.asarray(captions, dtype=str), return_inverse=True)
    padding = {"padding": "max_length", "max_length": max_length} if pad_to_max_length else {"padding": True}
    tokens = tokenizer(distinct.tolist(), return_tensors="pt", **padding)
    length = tokens["input_ids"].shape[1]
    if length > max_length:
        raise UserError(f"{max_length} text positions are fewer than the longest caption's {length} tokens: "
                        f"allow at least {length}")
    rows = torch.from_numpy(index.reshape(-1))
    return tokens["input_ids"][rows], tokens["attention_mask"][rows]


def tokenize_for_last_position(tokenizer: Any, captions: list[str],
                               max_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, attention mask and position ids that give a model pooling the last position (SigLIP) the
    text embeddings of ``tokenize(..., pad_to_max_length=True)``, in a few positions instead of ``max_length``.

    Padding is masked out of attention: no position attends to it, so on texts padded to ``max_length`` the last
    position's output (the embedding) depends only on the caption's tokens and on its own input, a padding token
    at position ``max_length - 1``. Here each caption is padded to the longest one, then that one padding token
    follows, with its position id ``max_length - 1``: the same embedding (up to rounding), so the model is
    trained where evaluation, which pads to ``max_length``, reads it. The demo's captions take at most 10
    of its 77 positions: its SigLIP pretraining took 71 s instead of 118 s on 2 cores.
    """
    input_ids, attention_mask = tokenize(tokenizer, captions, max_length)
    count, length = input_ids.shape
    position_ids = torch.arange(length).repeat(count, 1)
    if length == max_length:  # the longest caption fills every position: this is the padding to max_length
        return input_ids, attention_mask, position_ids
    return (torch.cat([input_ids, torch.full((count, 1), tokenizer.pad_token_id, dtype=input_ids.dtype)], 1),
            torch.cat([attention_mask, torch.zeros((count, 1), dtype=attention_mask.dtype)], 1),
            torch.cat([position_ids, torch.full((count, 1), max_length - 1)], 1))


def lr_schedule(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor of update ``step`` (0-based): linear warm-up to 1, then cosine decay to ~0.

    Warm-up keeps the first updates of a randomly initialised transformer small; the first
    step already gets 1/warmup, so no update is wasted at lr 0.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW decaying only weight matrices: decaying norms, biases or the temperature (logit_scale)
    would pull them towards zero for no benefit."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


def batch_order(n: int, steps: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(steps, batch_size) example indices: seeded reshuffles of the whole set, each split into full
    batches, so every example is seen once per pass and no batch holds one twice."""
    if batch_size > n:
        raise UserError(f"a batch of {batch_size} is larger than the {n} pretraining images: lower it or "
                        "generate more images")
    per_pass = n // batch_size
    passes = [torch.randperm(n, generator=generator)[:per_pass * batch_size].view(per_pass, batch_size)
              for _ in range(math.ceil(steps / per_pass))]
    return torch.cat(passes)[:steps]


def pretrain(model: CLIPModel | SiglipModel, pixels: torch.Tensor, input_ids: torch.Tensor,
             attention_mask: torch.Tensor, steps: int, batch_size: int, lr: float, warmup_steps: int,
             weight_decay: float, seed: int, log_every: int = LOG_EVERY,
             position_ids: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place with transformers' own loss: CLIP's contrastive softmax for a ``CLIPModel``,
    SigLIP's pairwise sigmoid for a ``SiglipModel`` (its learned bias is not clamped, nor decayed).
    ``position_ids`` (one row per caption, from ``tokenize_for_last_position``) go to the text tower with the ids;
    without them it numbers the positions from 0, as it does at evaluation.

    Returns the mean loss over each ``log_every`` steps (the last entry may cover fewer).
    """
    generator = torch.Generator().manual_seed(seed)
    order = batch_order(len(pixels), steps, batch_size, generator)
    optimizer = make_optimizer(model, lr, weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_schedule(step, warmup_steps, steps))
    model.train()
    log, window = [], []
    progress = tqdm(order, desc="pretrain", unit="step")
    for step, batch in enumerate(progress, start=1):
        texts = {"input_ids": input_ids[batch], "attention_mask": attention_mask[batch]}
        if position_ids is not None:
            texts["position_ids"] = position_ids[batch]
        loss = model(**texts, pixel_values=pixels[batch], return_loss=True).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        step_lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        window.append(loss.item())
        progress.set_postfix(loss=f"{window[-1]:.3f}")
        if step % log_every == 0 or step == steps:
            log.append({"step": step, "loss": round(sum(window) / len(window), 5), "lr": float(f"{step_lr:.6g}")})
            window = []
    model.eval()
    return log
