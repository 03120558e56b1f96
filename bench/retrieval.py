"""Retrieval's ranks at COCO's scale and beyond: seconds, queries per second and memory of ``rank_all``, against the
size the full score matrix would take.

    python -m bench.retrieval                # 3 sizes on the CPU (under a minute on 2 cores): writes
                                             # bench/retrieval_results.json
    python -m bench.retrieval --device cuda  # on a GPU: bench/retrieval_results_cuda.json
    python -m bench.retrieval --large        # adds 200,000 images x 1,000,000 captions (the design target)
    python -m bench.retrieval --smoke        # seconds: two tiny sizes, figures to a temporary file

Random unit features (D = 512, 5 captions per image in the default sizes, an image's captions consecutive), each
size in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own: the RSS once the inputs exist, the peak
during ``rank_all``, and working memory = the peak minus that (the evaluation's own). Random captions are
independent of their images, so every positive sits in the thick of its candidates' scores: the most entries in
the band that is rechecked in float64, the slowest case for ``rank_all``. The bootstrap of ``evaluate_retrieval``
(recall@1, 5, 10 both ways, 1,000 resamples) is timed after it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = ["2000x10000", "6000x30000", "20000x100000"]  # images x captions
LARGE = "200000x1000000"
SMOKE_SIZES = ["50x250", "120x600"]
SMOKE_JSON = Path(tempfile.gettempdir()) / "bench_retrieval_smoke_results.json"  # never a committed result file
DIM, RESAMPLES = 512, 1000


def parse_size(size: str) -> tuple[int, int]:
    images, captions = (int(part) for part in size.lower().split("x"))
    if images < 1 or captions < images:
        raise ValueError(f"{size}: give IMAGESxCAPTIONS with captions >= images >= 1")
    return images, captions


def unit_features(rows: int, rng: np.random.Generator, chunk: int = 8192) -> np.ndarray:
    """(rows, DIM) float32 random unit vectors, drawn a chunk at a time (no float64 copy of the whole)."""
    out = np.empty((rows, DIM), dtype=np.float32)
    for start in range(0, rows, chunk):
        block = rng.standard_normal((min(chunk, rows - start), DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out


def status_mb(field: str) -> float:
    """A memory field of Linux's /proc/self/status in MB: VmRSS (resident now), VmHWM (this process's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    """ru_maxrss in MB (kB on Linux). It starts from the parent's resident size at the fork, so the parent of the
    measured processes imports neither torch nor the library: a python with numpy, some 30 MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def busy_seconds() -> float:
    """CPU time of all processes on all cores since boot (/proc/stat), as bench.benchmark.LoadMeter reads it; that
    module imports torch, which this bench's parent must not."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def measure(size: str, device_name: str, tile_scores: int) -> dict[str, object]:
    """One size, in this process (a fresh one): the inputs, then rank_all, then the bootstrap."""
    import torch

    from clip_study.evaluation.intervals import Bootstrap
    from clip_study.evaluation.retrieval import evaluate_retrieval, rank_all
    from clip_study.models.pixels import available_cores
    from clip_study.models.speed import cpu_name

    torch.set_num_threads(available_cores())
    device = torch.device(device_name)
    warm = np.random.default_rng(1)  # first-call set-up (threads, allocator) is not the size's working memory
    rank_all(unit_features(8, warm), unit_features(16, warm), np.arange(16) % 8, device=device, progress=False)
    images, captions = parse_size(size)
    rng = np.random.default_rng(0)
    image_features, text_features = unit_features(images, rng), unit_features(captions, rng)
    text_image = np.arange(captions) * images // captions  # an image's captions consecutive, as in COCO
    inputs_mb, peak_before_mb = status_mb("VmRSS"), peak_mb()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    ranks = rank_all(image_features, text_features, text_image, device=device, tile_scores=tile_scores,
                     progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak, own_peak = peak_mb(), status_mb("VmHWM")
    start = time.perf_counter()
    result = evaluate_retrieval(ranks, [1, 5, 10], Bootstrap(resamples=RESAMPLES))
    evaluate_seconds = time.perf_counter() - start
    row = {"images": images, "captions": captions, "captions_per_image": round(captions / images, 2),
           "queries": images + captions,
           "rank_all_seconds": round(seconds, 2), "queries_per_second": round((images + captions) / seconds),
           "inputs_rss_mb": round(inputs_mb), "peak_rss_mb": round(peak), "working_mb": round(peak - inputs_mb),
           "inputs_mb": round((images + captions) * DIM * 4 / 2 ** 20),
           "full_matrix_mb": round(images * captions * 4 / 2 ** 20),
           "peak_before_rank_all_mb": round(peak_before_mb), "vm_hwm_mb": round(own_peak),
           "evaluate_seconds": round(evaluate_seconds, 2), "peak_rss_after_evaluate_mb": round(peak_mb()),
           "recall@1": {direction: result[direction]["recall"]["recall@1"]["value"] for direction in result},
           "torch": torch.__version__, "cpu": cpu_name(),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()}
    if device.type == "cuda":
        row["device_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20)
    return row


def run_size(size: str, device: str, tile_scores: int) -> dict[str, object]:
    """``measure`` in a fresh interpreter; its last stdout line is the row. A failure ends the bench (exit 1)."""
    command = [sys.executable, "-m", "bench.retrieval", "--one", size, "--device", device,
               "--tile-scores", str(tile_scores)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        sys.exit(f"bench.retrieval: {size} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict) -> None:
    print(f"\n== rank_all on {results['device']} ({results['device_name']}, {results['cores']} cores, torch "
          f"{results['torch']}), D = {results['dim']}, tiles of at most {results['tile_scores']:,} scores, "
          f"{results['measured']}; other processes used at most "
          f"{max(row['other_processes_cores'] for row in results['sizes'])} cores")
    head = ["images x captions", "rank_all s", "queries/s", "RSS after inputs", "peak RSS", "working memory",
            "full matrix", "bootstrap s"]
    print("  " + " | ".join(head))
    for row in results["sizes"]:
        print(f"  {row['images']:,} x {row['captions']:,} | {row['rank_all_seconds']} | "
              f"{row['queries_per_second']:,} | {row['inputs_rss_mb']:,} MB | {row['peak_rss_mb']:,} MB | "
              f"{row['working_mb']:,} MB | {row['full_matrix_mb']:,} MB | {row['evaluate_seconds']}")
    print(f"benchmark took {results['bench_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help=f"IMAGESxCAPTIONS, comma-separated (default {','.join(SIZES)})")
    parser.add_argument("--large", action="store_true", help=f"add {LARGE} (the design target: 2.4 GB of inputs, "
                        "hours on 2 cores, minutes on a GPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the tiles are computed")
    parser.add_argument("--tile-scores", type=int, default=1 << 24, help="scores per tile (default 16,777,216)")
    parser.add_argument("--json", help="where to write the results (default bench/retrieval_results.json, "
                        "bench/retrieval_results_cuda.json on cuda)")
    parser.add_argument("--smoke", action="store_true", help=f"check that the bench runs, in seconds: sizes "
                        f"{', '.join(SMOKE_SIZES)}; the figures mean little and go to {SMOKE_JSON}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the subprocess of one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.tile_scores)))
        return
    if args.smoke and (args.json or args.sizes or args.large):
        parser.error(f"--smoke runs its own sizes and writes only {SMOKE_JSON}; drop the other options")
    sizes = SMOKE_SIZES if args.smoke else (args.sizes.split(",") if args.sizes else list(SIZES))
    sizes += [LARGE] if args.large else []
    for size in sizes:
        try:
            parse_size(size)
        except ValueError as error:
            parser.error(f"--sizes {size}: {error}")
    started = time.monotonic()
    gpu = args.device == "cuda"
    results: dict[str, object] = {  # the machine, torch and the device from the first measured process
        "cpu": None, "cores": len(os.sched_getaffinity(0)), "measured": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "smoke": args.smoke, "torch": None, "device": args.device, "device_name": None,
        "dim": DIM, "tile_scores": args.tile_scores, "bootstrap_resamples": RESAMPLES,
        "features": "random unit vectors, captions independent of their images", "sizes": []}
    for size in sizes:
        print(f"{size} on {args.device} ...", flush=True)
        wall, busy, ours = time.monotonic(), busy_seconds(), sum(os.times()[:4])
        row = run_size(size, args.device, args.tile_scores)
        others = busy_seconds() - busy - (sum(os.times()[:4]) - ours)  # the child's time is in os.times()
        row["other_processes_cores"] = round(max(0.0, others / (time.monotonic() - wall)), 2)
        for key in ("cpu", "torch", "device_name"):
            value = row.pop(key)
            results[key] = results[key] or value
        results["sizes"].append(row)
        print(f"  {row['rank_all_seconds']} s, {row['queries_per_second']:,} queries/s, working memory "
              f"{row['working_mb']:,} MB (the full matrix: {row['full_matrix_mb']:,} MB)", flush=True)
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    report(results)
    out = SMOKE_JSON if args.smoke else Path(args.json or ROOT / "bench" / (
        "retrieval_results_cuda.json" if gpu else "retrieval_results.json"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results -> {out}" + (" (smoke run: tiny sizes, not measurements)" if args.smoke else ""))


if __name__ == "__main__":
    main()
