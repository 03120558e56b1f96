"""The encoding speed an extract run measured and the machine it measured it on.

A measured time differs between two runs of the same code on the same machine, so it never goes into a file
DVC tracks (their bytes are what a rerun reproduces): the extract stage writes it to a log beside the data,
``data/speed/<model>/<dataset>.json``, which neither DVC nor git tracks. Timing as such is the benchmark's job
(``python -m bench.benchmark``), which measures the same code under controlled load.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from clip_study.metrics_files.extract import ExtractSpeed
from clip_study.models.pixels import available_cores


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else the machine type (x86_64, arm64)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.machine())


def machine() -> dict[str, Any]:
    """What a measurement ran on, and when: the CPU, the cores this process may use, the UTC time now."""
    return {"cpu": cpu_name(), "cores": available_cores(),
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def measured_speed(*, model: str, checkpoint: str, images_encoded: int, seconds: float, device: str,
                   gpu: str | None, precision: str, engine: str, threads: int, workers: int, batch_size: int,
                   torch_version: str) -> ExtractSpeed:
    """One extract run's speed: ``images_encoded`` in ``seconds`` (none encoded when every shard was already
    written: no rate), with how and where it ran."""
    rate = round(images_encoded / seconds, 1) if images_encoded and seconds > 0 else None
    return ExtractSpeed(model=model, checkpoint=checkpoint, images_encoded=images_encoded,
                        seconds=round(seconds, 3), images_per_second=rate, device=device, gpu=gpu,
                        precision=precision, engine=engine, threads=threads, workers=workers,
                        batch_size=batch_size, platform=platform.platform(), torch=torch_version, **machine())


def speed_line(speed: ExtractSpeed) -> str:
    """The speed in one line, as the stage prints it."""
    rate = f"{speed.images_per_second:.0f} images/s" if speed.images_per_second else "no rate"
    where = speed.gpu or f"{speed.cpu}, {speed.cores} cores, {speed.threads} torch threads"
    return (f"encoded {speed.images_encoded} images in {speed.seconds:.1f} s ({rate}) on {speed.device} ({where}), "
            f"{speed.precision}, engine {speed.engine}")
