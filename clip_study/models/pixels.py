"""Image files to pixel batches: decode, preprocess, batch, in DataLoader workers.

CLIP's image processor resizes the shortest edge (bicubic), centre-crops, rescales to [0, 1] and
normalises per channel. ``LeanPreprocessor`` does the same with one PIL resize, one crop and a
256-entry lookup table per channel, which gives bit-identical tensors (the rescale and normalise
are applied to each possible uint8 value with the processor's own float operations) at about
three quarters of the processor's cost. It is used only when the checkpoint's processor config is
one it reproduces; any other processor is called as is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

from clip_study.data.images import open_rgb

Preprocess = Callable[[Image.Image], np.ndarray]

# processor settings the lean path reproduces, and the values it needs them to have
_LEAN_REQUIREMENTS = {"do_resize": True, "do_convert_rgb": True, "do_rescale": True, "do_normalize": True}
_LEAN_PROCESSORS = {"CLIPImageProcessor", "CLIPImageProcessorPil"}


class LeanPreprocessor:
    """Resize the shortest edge, centre-crop, rescale and normalise, exactly as ``CLIPImageProcessor``."""

    def __init__(self, shortest_edge: int, crop: tuple[int, int] | None, resample: int,
                 rescale_factor: float, mean: list[float], std: list[float]) -> None:
        self.shortest_edge, self.crop, self.resample = shortest_edge, crop, resample
        # the processor's float ops applied to every uint8 value: float64 rescale, float32 normalise
        values = (np.arange(256, dtype=np.float64) * rescale_factor).astype(np.float32)
        mean32, std32 = np.array(mean, dtype=np.float32), np.array(std, dtype=np.float32)
        self.table = ((values[None, :] - mean32[:, None]) / std32[:, None]).astype(np.float32)  # (3, 256)

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) with the shortest edge at ``shortest_edge``, the long one truncated as transformers does."""
        if width <= height:
            return self.shortest_edge, int(self.shortest_edge * height / width)
        return int(self.shortest_edge * width / height), self.shortest_edge

    def __call__(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) float32 from an RGB image."""
        image = image.resize(self.resized_size(*image.size), resample=self.resample)
        if self.crop is not None:
            crop_height, crop_width = self.crop
            top, left = (image.height - crop_height) // 2, (image.width - crop_width) // 2
            image = image.crop((left, top, left + crop_width, top + crop_height))
        pixels = np.asarray(image)  # (H, W, 3) uint8
        return np.stack([self.table[channel][pixels[..., channel]] for channel in range(3)])


def _given(settings: object) -> dict[str, Any]:
    """A size setting's keys that are set ({"shortest_edge": 224}, {"height": 224, "width": 224})."""
    return {k: v for k, v in settings.items() if v is not None} if isinstance(settings, dict) else {}


def lean_preprocessor(processor: Any) -> LeanPreprocessor | None:
    """The lean equivalent of ``processor``, or None when its config asks for anything the lean path
    does not reproduce (another processor class, a fixed resize, padding, a crop larger than the resize)."""
    config = processor.to_dict()  # plain values in transformers 4.x and 5.x alike
    if config.get("image_processor_type") not in _LEAN_PROCESSORS:
        return None
    if any(config.get(key) != value for key, value in _LEAN_REQUIREMENTS.items()) or config.get("do_pad"):
        return None
    size, crop = _given(config.get("size")), None
    if set(size) != {"shortest_edge"}:
        return None
    if config.get("do_center_crop"):
        crop_size = _given(config.get("crop_size"))
        if set(crop_size) != {"height", "width"} or max(crop_size.values()) > size["shortest_edge"]:
            return None
        crop = (int(crop_size["height"]), int(crop_size["width"]))
    resample = config.get("resample")
    return LeanPreprocessor(int(size["shortest_edge"]), crop, int(3 if resample is None else resample),
                            float(config["rescale_factor"]), list(config["image_mean"]), list(config["image_std"]))


class ProcessorPreprocessor:
    """Any image processor, one image at a time (the fallback when the lean path does not apply)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> np.ndarray:
        return np.asarray(self.processor(images=[image], return_tensors="np")["pixel_values"][0], dtype=np.float32)


def preprocessor(processor: Any, lean: bool = True) -> tuple[Preprocess, str]:
    """The preprocessing to use for ``processor`` and a name for logs and cache keys."""
    fast = lean_preprocessor(processor) if lean else None
    if fast is not None:
        return fast, "lean"
    return ProcessorPreprocessor(processor), type(processor).__name__


class ImageFiles(torch.utils.data.Dataset):
    """Preprocessed pixels of image files, in order; decoding happens in the DataLoader's workers."""

    def __init__(self, paths: list[Path], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.preprocess(open_rgb(self.paths[index])))


def _one_thread(_: int) -> None:
    """Workers only decode and preprocess: one torch thread each leaves the cores to the model."""
    torch.set_num_threads(1)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pixel_batches(paths: list[Path], preprocess: Preprocess, batch_size: int, workers: int,
                  pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """(B, 3, H, W) float32 batches of ``paths`` in order; ``workers`` processes decode ahead of the model
    (``pin_memory`` speeds up the copy to a cuda device)."""
    loader = torch.utils.data.DataLoader(ImageFiles(paths, preprocess), batch_size=batch_size, shuffle=False,
                                         num_workers=workers, worker_init_fn=_one_thread if workers else None,
                                         prefetch_factor=2 if workers else None, pin_memory=pin_memory)
    yield from loader
