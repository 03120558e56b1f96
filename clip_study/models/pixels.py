"""Image files to pixel batches: decode, preprocess, batch, in DataLoader workers.

CLIP's image processor resizes the shortest edge (bicubic), centre-crops, rescales to [0, 1] and
normalises per channel. ``LeanPreprocessor`` does the same with one PIL resize, one crop and a
256-entry lookup table per channel, which gives bit-identical tensors (the rescale and normalise
are applied to each possible uint8 value with the processor's own float operations). The workers
do the resize and crop and ship uint8 pixels (a quarter of float32's bytes through shared memory and
to the device); the lookup runs where the model runs, on the whole batch. The lean path is used only
where it is verified: its config must be one it reproduces, and ``choose_preprocessing`` compares it
with the processor on the run's first images; anything else calls the processor itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

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
        self.shortest_edge, self.crop_size, self.resample = shortest_edge, crop, resample
        # the processor's float ops applied to every uint8 value: float64 rescale, float32 normalise
        values = (np.arange(256, dtype=np.float64) * rescale_factor).astype(np.float32)
        mean32, std32 = np.array(mean, dtype=np.float32), np.array(std, dtype=np.float32)
        self.table = ((values[None, :] - mean32[:, None]) / std32[:, None]).astype(np.float32)  # (3, 256)
        self._flat_tables: dict[torch.device, torch.Tensor] = {}

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) with the shortest edge at ``shortest_edge``, the long one truncated as transformers does."""
        if width <= height:
            return self.shortest_edge, int(self.shortest_edge * height / width)
        return int(self.shortest_edge * width / height), self.shortest_edge

    def crop(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) uint8 from an RGB image: resized and cropped, not yet normalised (what workers ship)."""
        image = image.resize(self.resized_size(*image.size), resample=self.resample)
        if self.crop_size is not None:
            crop_height, crop_width = self.crop_size
            top, left = (image.height - crop_height) // 2, (image.width - crop_width) // 2
            image = image.crop((left, top, left + crop_width, top + crop_height))
        return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))

    def __getstate__(self) -> dict[str, Any]:
        """Workers get the numpy table only: a cuda copy must never travel to (and start cuda in) a worker."""
        return {**self.__dict__, "_flat_tables": {}}

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 -> float32 on the same device, by the lookup table (exact: a copy of table values)."""
        table = self._flat_tables.get(pixels.device)
        if table is None:
            table = self._flat_tables[pixels.device] = torch.from_numpy(self.table.reshape(-1)).to(pixels.device)
        offsets = torch.arange(0, 3 * 256, 256, device=pixels.device).view(1, 3, 1, 1)
        return table[pixels.long() + offsets]

    def __call__(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) float32 from an RGB image, as the processor gives it."""
        pixels = self.crop(image)
        return np.stack([self.table[channel][pixels[channel]] for channel in range(3)])


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


@dataclass(frozen=True)
class Preprocessing:
    """How images become model input: ``in_worker`` runs in the DataLoader workers (decoded image to an
    array), ``on_device`` on each batch where the model runs (to float32 pixels)."""

    name: str  # for logs and shard keys: "lean" or the processor's class
    in_worker: Callable[[Image.Image], np.ndarray]
    on_device: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) float32 model input of one image, on the cpu."""
        return self.on_device(torch.from_numpy(self.in_worker(image))[None])[0].numpy()


def _as_float(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.float()


def lean_difference(processor: Any, lean: LeanPreprocessor, images: Sequence[Image.Image]) -> float:
    """The largest absolute difference between the lean path and the processor on ``images`` (0.0: identical)."""
    worst = 0.0
    for image in images:
        expected = np.asarray(processor(images=[image], return_tensors="np")["pixel_values"][0], dtype=np.float32)
        got = lean(image)
        worst = max(worst, float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf"))
    return worst


def choose_preprocessing(processor: Any, check_images: Sequence[Image.Image] = (),
                         warn: Callable[[str], None] = print) -> Preprocessing:
    """The lean path where the processor's config is one it reproduces and it gives the processor's own
    pixels on ``check_images`` (bit for bit); else the processor, with one ``warn`` line when the config
    matched but the pixels did not (a backend that resizes differently, a subclass)."""
    lean = lean_preprocessor(processor)
    if lean is not None:
        difference = lean_difference(processor, lean, check_images)
        if difference == 0.0:
            return Preprocessing("lean", lean.crop, lean.normalise)
        warn(f"the lean preprocessing differs from {type(processor).__name__} by up to {difference:.3g} on the "
             f"first {len(check_images)} images: calling the processor itself (slower, same features as a notebook)")
    return Preprocessing(type(processor).__name__, ProcessorPreprocessor(processor), _as_float)


class ImageFiles(torch.utils.data.Dataset):
    """Worker-side pixels of image files, in order; decoding happens in the DataLoader's workers."""

    def __init__(self, paths: list[Path], in_worker: Callable[[Image.Image], np.ndarray]) -> None:
        self.paths, self.in_worker = paths, in_worker

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.in_worker(open_rgb(self.paths[index])))


def _one_thread(_: int) -> None:
    """Workers only decode and preprocess: one torch thread each leaves the cores to the model."""
    torch.set_num_threads(1)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def batch_indices(group_sizes: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of consecutive indices over groups laid end to end, never spanning two groups (so each
    group's batches are those it would get alone)."""
    batches = []
    for start, size in zip([0, *accumulate(group_sizes)], group_sizes):
        batches += [list(range(first, min(first + batch_size, start + size)))
                    for first in range(start, start + size, batch_size)]
    return batches


def pixel_batches(paths: list[Path], in_worker: Callable[[Image.Image], np.ndarray], batch_size: int,
                  workers: int, pin_memory: bool = False,
                  group_sizes: Sequence[int] | None = None) -> Iterator[torch.Tensor]:
    """(B, 3, H, W) batches of ``paths`` in order, as ``in_worker`` makes them; ``workers`` processes decode
    ahead of the model (``pin_memory`` speeds up the copy to a cuda device). ``group_sizes`` splits the
    paths into consecutive groups (e.g. splits) that one set of workers decodes without a pause between
    them, each batched as if alone."""
    batches = batch_indices(group_sizes if group_sizes is not None else [len(paths)], batch_size)
    loader = torch.utils.data.DataLoader(ImageFiles(paths, in_worker), batch_sampler=batches,
                                         num_workers=workers, worker_init_fn=_one_thread if workers else None,
                                         prefetch_factor=2 if workers else None, pin_memory=pin_memory)
    yield from loader


def to_device_ahead(batches: Iterator[torch.Tensor], device: torch.device) -> Iterator[torch.Tensor]:
    """The batches on ``device``; on cuda each batch's copy is issued on a side stream one batch ahead, so it
    overlaps the model's work on the batch before (from pinned memory the copy does not block the cpu)."""
    if device.type != "cuda":
        yield from (batch.to(device) for batch in batches)
        return
    copies, compute = torch.cuda.Stream(device), torch.cuda.current_stream(device)

    def copy(batch: torch.Tensor | None) -> torch.Tensor | None:
        if batch is None:
            return None
        with torch.cuda.stream(copies):
            return batch.to(device, non_blocking=True)

    batches = iter(batches)
    ahead = copy(next(batches, None))
    while ahead is not None:
        compute.wait_stream(copies)
        ahead.record_stream(compute)  # its memory is in use on the compute stream until the model is done
        current, ahead = ahead, copy(next(batches, None))
        yield current
