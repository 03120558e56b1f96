"""The Ray engine's cost against the local engine: images/s and the fixed start-up cost, for the local
engine and for Ray with 1 and 2 actors on an in-process cluster of this machine's cores.

    python -m bench.ray            # about 3 minutes on 2 cores, offline; needs pip install -c constraints.txt -e '.[ray]'
    python -m bench.ray --smoke    # ~20 s: each step once (Ray with 1 actor), a tiny model, 2 and 4 images (CI runs it)

A random-weight ViT-B/32 checkpoint (the real compute, no download) on ImageNet-like 500x375 JPEGs. Each
engine encodes a small and a large set: the rate is the extra images over the extra time, the fixed cost
what is left of the small run's time (Ray: model loads in the actors, dataset start; the cluster's own
start is timed apart). Results are printed and written to bench/ray_results.json (``--json``) with the
CPU, the cores and the time of the run. ``--smoke`` checks that the bench still runs (a one-layer CLIP, 2 and 4
images, the local engine and Ray with 1 actor: 2 actors run the same code, and tests/test_ray.py runs them);
its figures mean nothing and go to a temporary file, never bench/ray_results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.benchmark import LoadMeter, random_checkpoint, tiny_config, write_images
from clip_study.models import loading, pixels, ray_extraction
from clip_study.models.extraction import extract_features
from clip_study.models.speed import machine

SMOKE_JSON = Path(tempfile.gettempdir()) / "bench_ray_smoke_results.json"  # never a committed result file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, help="images of the small run (default 16; 2 with --smoke)")
    parser.add_argument("--large", type=int, help="images of the large run (default 144; 4 with --smoke)")
    parser.add_argument("--json", help="where to write results (default bench/ray_results.json)")
    parser.add_argument("--smoke", action="store_true", help="check that every step runs, in seconds: a tiny "
                        "CLIP, 2 and 4 images, Ray with 1 actor only; the figures mean nothing and go to "
                        f"{SMOKE_JSON}")
    args = parser.parse_args()
    if args.smoke and args.json:
        parser.error(f"--json {args.json}: a smoke run writes only {SMOKE_JSON}; drop --json or --smoke")
    small, large = args.small or (2 if args.smoke else 16), args.large or (4 if args.smoke else 144)
    if not 0 < small < large:
        parser.error(f"--small {small} --large {large}: the rate is the extra images over the extra time; "
                     "give 0 < --small < --large")
    cores, started = pixels.available_cores(), time.monotonic()
    torch.set_num_threads(cores)
    results: dict[str, object] = {**machine(), "smoke": args.smoke, "gpu": "none (not available here)",
                                  "ray": __import__("ray").__version__, "torch": torch.__version__,
                                  "model": "tiny CLIP" if args.smoke else "ViT-B/32",
                                  "images": {"small": small, "large": large, "size": "500x375 JPEG"}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = random_checkpoint(tmp / "checkpoint", tiny_config() if args.smoke else None)
        model = loading.load_model(str(checkpoint), torch.device("cpu"))
        processor = loading.load_image_processor(str(checkpoint))
        paths = write_images(tmp / "images", large)
        sets = {size: {"train": (paths[:count], np.zeros(count, dtype=np.int64))}
                for size, count in (("small", small), ("large", large))}
        quiet = lambda message: None  # noqa: E731

        def timed(run) -> tuple[float, float]:
            with LoadMeter() as load:
                begin = time.perf_counter()
                run()
                seconds = time.perf_counter() - begin
            shutil.rmtree(tmp / "out", ignore_errors=True)
            return seconds, load.other_cores

        def summary(name: str, small_s: float, large_s: float, load: float) -> dict[str, float]:
            rate = (large - small) / (large_s - small_s)
            row = {"small_s": round(small_s, 2), "large_s": round(large_s, 2), "images_per_s": round(rate, 2),
                   "fixed_s": round(max(0.0, small_s - small / rate), 2), "other_cores": round(load, 2)}
            print(f"{name:>14}: {rate:6.2f} img/s, fixed cost {row['fixed_s']:5.2f} s "
                  f"(small {small_s:.1f} s, large {large_s:.1f} s; other processes using {load:.2f} cores)")
            return row

        engines = {}
        local = {size: timed(lambda s=splits: extract_features(model, processor, s, tmp / "out", "fp32", 64, 0,
                                                               4096, log=quiet)) for size, splits in sets.items()}
        engines["local"] = summary("local", local["small"][0], local["large"][0], local["large"][1])
        begin = time.perf_counter()
        with ray_extraction.cluster("local", cores, log=quiet) as ray:
            results["ray_init_s"] = round(time.perf_counter() - begin, 2)
            print(f"ray.init of a {cores}-CPU in-process cluster: {results['ray_init_s']} s")
            for actors in (1,) if args.smoke else (1, 2):  # smoke: 2 actors run the same code, 20 s more here
                runs = {size: timed(lambda s=splits: ray_extraction.extract_features_ray(
                            ray, model, processor, s, tmp / "out", str(checkpoint), "fp32", 64, cores, 4096, actors,
                            log=quiet)) for size, splits in sets.items()}
                engines[f"ray_{actors}_actor"] = summary(f"ray, {actors} actor(s)", runs["small"][0],
                                                         runs["large"][0], runs["large"][1])
        results["engines"] = engines
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    out = SMOKE_JSON if args.smoke else Path(args.json or Path(__file__).with_name("ray_results.json"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {out}" + (" (smoke run: figures of a tiny model on a few images, not measurements)"
                         if args.smoke else ""))


if __name__ == "__main__":
    main()
