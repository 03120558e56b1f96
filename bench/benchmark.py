"""Where the time goes: image-feature extraction against its ceiling and a notebook loop (on 500x375
and 64x64 JPEGs), the extract stage as a subprocess, the int8 path, a template-only sweep against a
full demo run, probe training, and extract's memory.

    python -m bench.benchmark                 # about 12 minutes on 2 cores, offline (not part of the tests)
    python -m bench.benchmark --device cuda --skip-demo   # on a GPU machine
    python -m bench.benchmark --smoke         # ~20 s: every step once on a tiny model, no demo (CI runs it)

Everything runs on the same generated images with the full ViT-B/32 architecture and random
weights (``CLIPModel(CLIPConfig())``: the real checkpoint's compute, no download). The extraction
variants run round-robin, so outside load hits them alike; each round prints the load it saw.
Results are printed and written as JSON (``--json``) with the CPU, the cores and the time of the run.
``--smoke`` checks that the bench still runs: a one-layer CLIP, 8 images of 64x48, one round, the extract
stage as a subprocess three times, the probe for one epoch, the demo skipped (minutes of pretraining);
its figures mean nothing and go to a temporary file, never bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from clip_study.data import shards, sources, subset
from clip_study.data.images import open_rgb
from clip_study.evaluation.linear_probe import train_linear_probe
from clip_study.evaluation.prompts import class_prompts, read_templates, template_keys
from clip_study.evaluation.similarity import l2_normalize, similarity_scores
from clip_study.models import encoding, loading, pixels
from clip_study.models.extraction import default_workers
from clip_study.models.precision import resolve_precision
from clip_study.models.speed import cpu_name, machine
from tests.dvc_repo import ROOT, commit, project_copy, sh

TEMPLATE_SWEEP = ["a photo of a {}", "a drawing of a {}"]


def busy_jiffies() -> int:
    """CPU time (all processes, all cores) since boot, in clock ticks."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


class LoadMeter:
    """Cores kept busy by other processes while we measure (our own CPU time subtracted)."""

    def __enter__(self) -> LoadMeter:
        self.wall, self.busy, self.ours = time.monotonic(), busy_jiffies(), sum(os.times()[:4])
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self.wall
        others = (busy_jiffies() - self.busy) / os.sysconf("SC_CLK_TCK") - (sum(os.times()[:4]) - self.ours)
        self.other_cores = max(0.0, others / wall)


def _write_image(task: tuple[Path, int, int, int, int]) -> Path:
    path, seed, index, width, height = task
    rng = np.random.default_rng([seed, index])
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    noisy = np.asarray(coarse).astype(np.int16) + rng.integers(-12, 13, (height, width, 3))
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def write_images(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (500, 375)) -> list[Path]:
    """JPEGs of ``size`` (default ImageNet-like 500x375: smooth content plus noise, ~40 KB each), written by
    every core."""
    folder.mkdir(parents=True, exist_ok=True)
    tasks = [(folder / f"{i:05d}.jpg", seed, i, *size) for i in range(count)]
    with ProcessPoolExecutor(pixels.available_cores()) as pool:
        return list(pool.map(_write_image, tasks, chunksize=64))


def random_checkpoint(out: Path, config: CLIPConfig | None = None) -> Path:
    """ViT-B/32 with random weights (or a CLIP of ``config``: the smoke runs' tiny one), saved like a hub
    checkpoint (what extract loads)."""
    torch.manual_seed(0)
    CLIPModel(config or CLIPConfig()).save_pretrained(out)
    CLIPImageProcessor().save_pretrained(out)
    return out


def tiny_config() -> CLIPConfig:
    """A CLIP of one 32-wide layer per tower, for smoke runs: every code path of the bench, none of ViT-B/32's
    compute (224-pixel input, 32-pixel patches, as ViT-B/32, so the default image processor fits)."""
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    return CLIPConfig(text_config=tower, vision_config={**tower, "image_size": 224, "patch_size": 32},
                      projection_dim=16)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU computes asynchronously; timing must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_extraction(model: CLIPModel, processor: CLIPImageProcessor, paths: list[Path], batch_size: int,
                       workers: int, rounds: int, work: Path, precision: str) -> dict[str, object]:
    """(a) the stage's encoder on pixels already on the device (the ceiling), (b) the stage's path, (c) a
    notebook loop, and on the cpu (d) the stage's path in int8."""
    device = next(model.parameters()).device
    preprocessing, encode = encoding.prepare_run(model, processor, paths, precision, log=lambda line: None)
    ready = torch.stack([torch.from_numpy(preprocessing.in_worker(open_rgb(p))) for p in paths]).to(device)

    def forward_only() -> None:
        for batch in ready.split(batch_size):
            encode(batch)
        synchronize(device)

    def ours(encoder: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:  # what the extract stage does: plan shards, decode in workers, encode, write
            plan = shards.plan("bench", paths, 4096, "bench")
            batches = pixels.pixel_batches(paths, preprocessing.in_worker, batch_size, workers, device.type == "cuda")
            features = encoding.encode_batches(encoder, pixels.to_device_ahead(batches, device), len(paths), "bench")
            shards.write(work, plan, features)
            shards.remove(work)
        return run

    @torch.no_grad()
    def notebook_loop() -> None:  # PIL open -> processor -> model in fp32, one batch at a time, one process
        for start in range(0, len(paths), batch_size):
            images = [Image.open(p).convert("RGB") for p in paths[start:start + batch_size]]
            inputs = processor(images=images, return_tensors="pt").to(device)
            encoding._embedding(model.get_image_features(**inputs)).cpu()

    variants = {"a_forward_only": forward_only, "b_extraction": ours(encode), "c_notebook_loop": notebook_loop}
    quantize_seconds = None
    if device.type == "cpu":
        start = time.monotonic()
        int8 = encoding.ImageEncoder(model, "int8", preprocessing.on_device)
        quantize_seconds = round(time.monotonic() - start, 2)
        variants["d_extraction_int8"] = ours(int8)
        int8(ready[:batch_size])
    encode(ready[:batch_size])  # warm-up: first-call allocations, kernel choice
    synchronize(device)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    for round_ in range(rounds):
        with LoadMeter() as meter:
            for name, run in variants.items():
                start = time.monotonic()
                run()
                seconds[name].append(time.monotonic() - start)
        loads.append({"round": round_ + 1, "load_avg_1m": round(os.getloadavg()[0], 2),
                      "other_processes_cores": round(meter.other_cores, 2)})
        print(f"  round {round_ + 1}: " + ", ".join(f"{n.split('_')[0]} {len(paths) / s[-1]:.1f} img/s"
                                                    for n, s in seconds.items())
              + f"; load avg {loads[-1]['load_avg_1m']}, other processes used {meter.other_cores:.2f} cores")
    rate = {name: len(paths) * rounds / sum(times) for name, times in seconds.items()}
    ratios = {"b/a": round(rate["b_extraction"] / rate["a_forward_only"], 3),
              "b/c": round(rate["b_extraction"] / rate["c_notebook_loop"], 3)}
    if "d_extraction_int8" in rate:
        ratios["d/b"] = round(rate["d_extraction_int8"] / rate["b_extraction"], 3)
    return {"images": len(paths), "batch_size": batch_size, "workers": workers, "threads": torch.get_num_threads(),
            "device": str(device), "precision": precision, "encoder": encode.mode,
            "preprocessing": preprocessing.name, "rounds": rounds, "quantize_seconds": quantize_seconds,
            "images_per_second": {k: round(v, 2) for k, v in rate.items()}, "ratios": ratios, "load": loads}


def timed(repo: Path, *command: str) -> float:
    start = time.monotonic()
    sh(repo, *command)
    return time.monotonic() - start


def measure_demo_sweep(folder: Path) -> tuple[dict[str, object], Path]:
    """(e) a template-only `dvc exp run` on the demo against a full demo repro without pretraining."""
    repo = project_copy(folder, "demo/dvc.yaml", "demo/params.yaml")
    dvc = (sys.executable, "-m", "dvc")
    pretrain = timed(repo / "demo", *dvc, "repro", "pretrain")
    full = timed(repo / "demo", *dvc, "repro")
    commit(repo, "demo run")
    templates = json.dumps(TEMPLATE_SWEEP)
    sweep = timed(repo / "demo", *dvc, "exp", "run", "-S", f"zeroshot.templates={templates}")
    return {"generate_and_pretrain_seconds": round(pretrain, 1), "full_repro_without_pretraining_seconds":
            round(full, 1), "template_only_exp_run_seconds": round(sweep, 1),
            "ratio": round(sweep / full, 3), "templates": TEMPLATE_SWEEP}, repo


def demo_templates(demo: Path, params: dict, dataset: str) -> list[str]:
    """The templates zeroshot uses on ``dataset`` in the demo folder ``demo``: the dataset's ``templates``
    file, else its own (the templates.json fetch wrote), else ``zeroshot.templates``."""
    entry = params["datasets"][dataset]
    if entry["templates"]:
        return read_templates(demo / entry["templates"], f"datasets.{dataset}.templates")
    own = json.loads((demo / "data" / "datasets" / dataset / "templates.json").read_text())["templates"]
    return list(template_keys(own or params["zeroshot"]["templates"]).values())


def measure_int8_on_demo(repo: Path) -> dict[str, dict[str, object]]:
    """int8 against fp32 on each of the demo's trained models in ``repo`` (``models`` of demo/params.yaml) and
    each of its datasets (``datasets``), keyed ``<model>-<dataset>`` as the demo's stages are: feature cosine
    and zero-shot top-1 per template. The params are read from this repository's demo: the sweep's
    ``dvc exp run`` left other templates in the copy's."""
    demo = repo / "demo"
    params = yaml.safe_load((ROOT / "demo" / "params.yaml").read_text())
    results = {}
    for short, entry in params["models"].items():
        checkpoint = str(demo / entry["name"])
        model = loading.load_model(checkpoint, torch.device("cpu"), entry.get("family", "auto"))
        processor, tokenizer = loading.load_image_processor(checkpoint), loading.load_tokenizer(checkpoint, model)
        for dataset in params["datasets"]:
            folder = demo / "data" / "datasets" / dataset / "subset"
            paths, labels = subset.read_split(folder, "test")
            names = [c["name"] for c in subset.read_classes(folder)]
            features = {p: encoding.encode_images(model, processor, paths, 256, precision=p)
                        for p in ("fp32", "int8")}
            cosine = (l2_normalize(features["fp32"]) * l2_normalize(features["int8"])).sum(axis=1)
            top1 = {}
            for template in demo_templates(demo, params, dataset):
                text = encoding.encode_texts(model, tokenizer, class_prompts(template, names))
                top1[template] = {p: float((similarity_scores(f, text, "cosine").argmax(1) == labels).mean())
                                  for p, f in features.items()}
            best = max(top1, key=lambda t: top1[t]["fp32"])
            results[f"{short}-{dataset}"] = {
                "images": len(paths), "cosine_mean": round(float(cosine.mean()), 5),
                "cosine_min": round(float(cosine.min()), 5), "best_template": best,
                "top1_fp32": round(top1[best]["fp32"], 4), "top1_int8": round(top1[best]["int8"], 4),
                "max_abs_top1_difference_over_templates": round(max(abs(v["fp32"] - v["int8"])
                                                                    for v in top1.values()), 4)}
    return results


def measure_probe(epochs: int = 10, images: int = 8000, dim: int = 512, classes: int = 200) -> dict[str, object]:
    """(f) the study's probe: 10 epochs of Adam, batch 64, on 8,000 x 512 features."""
    rng = np.random.default_rng(0)
    labels = np.arange(images) % classes
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    train = centres[labels] + rng.normal(size=(images, dim)).astype(np.float32)
    start = time.monotonic()
    for _ in train_linear_probe(train, labels, train[:2000], classes, epochs=epochs, lr=1e-4,
                                         batch_size=64, weight_decay=0.0, seed=0):
        pass
    return {"epochs": epochs, "train_images": images, "dim": dim, "classes": classes,
            "seconds": round(time.monotonic() - start, 2)}


BENCH_MODEL = "bench"  # the short name the bench's params give its checkpoint (extract --model bench)
STAGE_CLASSES = 4      # classes of run_stage's subset: its stratified split needs 2 images of each, so 8 at least
# runs a command, then prints its wall time and peak RSS (kB) and exits with its exit code
PROBE = ("import resource, subprocess, sys, time; start = time.monotonic(); "
         "code = subprocess.run(sys.argv[1:]).returncode; "
         "print(time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def stage_params(checkpoint: Path, device: str) -> dict:
    """The project's params with ``checkpoint`` as the only model (short name BENCH_MODEL) on ``device``: the
    layout stages.extract reads (``models: {short: {name, family}}``, ``model.device`` shared)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["models"] = {BENCH_MODEL: {"name": str(checkpoint), "family": "auto"}}
    params["model"]["device"] = device
    return params


def run_probed(command: list[str], what: str, fix: str) -> tuple[float, int, str]:
    """``command`` (a stage) as a subprocess from the repository root: its wall time, its peak RSS in kB and
    its stdout. A failed stage ends the bench (exit 1) with the stage's stderr and its last line, so a broken
    measurement is never recorded; ``fix`` names the bench code that wrote the stage's input."""
    done = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        *before, last = done.stderr.strip().splitlines() or ["(no output)"]
        if before:  # a traceback, progress bars: what led to the last line
            print("\n".join(before), file=sys.stderr)
        raise SystemExit(f"bench: {what} failed (exit {done.returncode}): {last}; if that input came from the "
                         f"bench, fix {fix}")
    seconds, peak_kb = done.stdout.split()[-2:]
    return float(seconds), int(peak_kb), done.stdout


def run_stage(checkpoint: Path, paths: list[Path], folder: Path, device: str = "cpu") -> dict[str, float]:
    """(s) the extract stage as a subprocess on ``paths``: its wall time (imports, device start, model load and
    shard planning included) and its peak resident memory."""
    labels = np.arange(len(paths)) % STAGE_CLASSES
    train, test = subset.split_indices(labels, 0.5, seed=0)
    examples = [sources.Example(class_id=str(label), path=path) for path, label in zip(paths, labels)]
    classes = [{"id": str(i), "name": str(i)} for i in range(STAGE_CLASSES)]
    subset.write_subset(folder / "subset", examples, labels, classes, {"train": train, "test": test})
    (folder / "params.yaml").write_text(yaml.safe_dump(stage_params(checkpoint, device)))
    command = [sys.executable, "-m", "stages.extract", "--params", str(folder / "params.yaml"), "--model",
               BENCH_MODEL, "--subset", str(folder / "subset"), "--out", str(folder / "features")]
    seconds, peak_kb, _ = run_probed(command, f"the extract stage on {len(paths)} images",
                                     "bench/benchmark.py:stage_params")
    return {"images": len(paths), "seconds": round(seconds, 2), "peak_mb": round(peak_kb / 1024)}


GPU_TARGETS = {"500x375": 1500, "64x64": 4000}  # (b) images/s on a GPU like an H200 (the performance issue)


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


SMOKE = {"images": 8, "rounds": 1, "sizes": "64x48", "memory_images": 8, "batch_size": 4}
SMOKE_JSON = Path(tempfile.gettempdir()) / "bench_smoke_results.json"  # never a committed result file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where the model runs (auto: cuda if present)")
    parser.add_argument("--images", type=int, help="images per extraction variant and round "
                        "(default 96 on the cpu, 6144 on a gpu)")
    parser.add_argument("--rounds", type=int, help="round-robin rounds (default 5 on the cpu, 3 on a gpu)")
    parser.add_argument("--sizes", help="JPEG sizes to measure (default 500x375,64x64)")
    parser.add_argument("--memory-images", type=int, help="the 1x image count for (g) (default 64)")
    parser.add_argument("--skip-demo", action="store_true", help="skip (e) and the int8 check on the demo")
    parser.add_argument("--json", help="where to write the results (default bench/results.json, "
                        "bench/results_cuda.json on a gpu)")
    parser.add_argument("--smoke", action="store_true", help="check that every step runs, in seconds: a tiny "
                        f"CLIP, {SMOKE['images']} {SMOKE['sizes']} images, one round, no demo; the figures mean "
                        f"nothing and go to {SMOKE_JSON}")
    args = parser.parse_args()
    if args.smoke and args.json:
        parser.error(f"--json {args.json}: a smoke run writes only {SMOKE_JSON}; drop --json or --smoke")
    for option, value in (("--images", args.images), ("--memory-images", args.memory_images)):
        if value is not None and value < 2 * STAGE_CLASSES:
            parser.error(f"{option} {value}: the extract stage's subset needs 2 images of each of its "
                         f"{STAGE_CLASSES} classes; give {2 * STAGE_CLASSES} or more")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    device = loading.pick_device(args.device)
    gpu = device.type != "cpu"
    defaults = SMOKE if args.smoke else {"images": 6144 if gpu else 96, "rounds": 3 if gpu else 5,
                                         "sizes": "500x375,64x64", "memory_images": 64,
                                         "batch_size": 256 if gpu else 64}
    images, rounds = args.images or defaults["images"], args.rounds or defaults["rounds"]
    sizes, memory_images = (args.sizes or defaults["sizes"]).split(","), args.memory_images or defaults["memory_images"]
    precision = resolve_precision("auto", device)
    cores = pixels.available_cores()
    torch.set_num_threads(cores)
    workers = default_workers(device, cores)
    model_name = "tiny CLIP" if args.smoke else "ViT-B/32"  # random weights, either
    results: dict[str, object] = {**machine(), "smoke": args.smoke, "torch": torch.__version__,
                                  "device": str(device),
                                  "device_name": torch.cuda.get_device_name(device) if gpu else cpu_name(),
                                  "model": model_name, "extraction": {}, "stage": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clip-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = random_checkpoint(tmp / "checkpoint", tiny_config() if args.smoke else None)
        model = loading.load_model(str(checkpoint), device)
        processor = loading.load_image_processor(str(checkpoint))
        for size in sizes:
            print(f"setup: {images} {size} JPEGs, a random {model_name} checkpoint ({cores} cores, {device})")
            paths = write_images(tmp / size, images, size=parse_size(size))
            print(f"(a)-(c) extraction on {images} {size} images, {rounds} rounds, round-robin, {precision}")
            results["extraction"][size] = measure_extraction(model, processor, paths, defaults["batch_size"],
                                                             workers, rounds, tmp / "work", precision)
            print(f"(s) the extract stage as a subprocess on {images} {size} images")
            results["stage"][size] = run_stage(checkpoint, paths, tmp / f"stage-{size}", device.type)
        del model
        print("(f) probe training")
        results["probe"] = measure_probe(epochs=1, images=256, dim=32, classes=8) if args.smoke else measure_probe()
        print("(g) extract's peak memory at 1x and 4x")
        paths = write_images(tmp / "memory", memory_images * 4)
        one = run_stage(checkpoint, paths[:memory_images], tmp / "memory-1x", device.type)["peak_mb"]
        four = run_stage(checkpoint, paths, tmp / "memory-4x", device.type)["peak_mb"]
        results["memory"] = {"images_1x": memory_images, "peak_mb_1x": one, "peak_mb_4x": four,
                             "ratio": round(four / one, 3)}
        if args.smoke:
            print("(e) and int8 on the demo: skipped in a smoke run (the demo's pretraining and full repro take "
                  "minutes); run without --smoke and --skip-demo to measure them")
        elif not args.skip_demo:
            print("(e) demo: pretrain (untimed), full repro, template-only dvc exp run")
            results["demo_sweep"], repo = measure_demo_sweep(tmp / "demo")
            print("int8 on the demo's trained models")
            results["int8_on_demo"] = measure_int8_on_demo(repo)
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    report(results)
    default_out = ROOT / "bench" / ("results_cuda.json" if gpu else "results.json")
    out = SMOKE_JSON if args.smoke else Path(args.json or default_out)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results -> {out}" + (" (smoke run: figures of a tiny model on a few images, not measurements)"
                                 if args.smoke else ""))


def report(results: dict) -> None:
    """Every figure, with the targets from the performance issues."""
    gpu = results["device"] != "cpu"
    for size, ex in results["extraction"].items():
        rate, ratio, stage = ex["images_per_second"], ex["ratios"], results["stage"][size]
        print(f"\n== extraction of {size} JPEGs on {results['device']} ({results['device_name']}), "
              f"{results.get('model', 'ViT-B/32')} "
              f"{ex['encoder']}, {ex['images']} images x {ex['rounds']} rounds, batch {ex['batch_size']}, "
              f"{ex['threads']} threads, {ex['workers']} workers, {ex['preprocessing']} preprocessing")
        for name, value in rate.items():
            print(f"  {name:<20} {value:9.2f} img/s")
        b_seconds = ex["images"] / rate["b_extraction"]
        if gpu:
            print(f"  (b) {rate['b_extraction']:.0f} img/s (target >= {GPU_TARGETS.get(size, '-')})   "
                  f"b/a {ratio['b/a']:.3f}   b/c {ratio['b/c']:.3f} (target >= 4)")
        else:
            print(f"  b/a {ratio['b/a']:.3f} (target >= 0.9)   b/c {ratio['b/c']:.3f} (>= 1.0)   "
                  f"d/b {ratio['d/b']:.3f} (>= 1.6); int8 quantisation took {ex['quantize_seconds']} s")
        print(f"  (s) the stage as a subprocess: {stage['seconds']} s for {stage['images']} images, (b)'s time "
              f"{b_seconds:.1f} s + {stage['seconds'] - b_seconds:.1f} s (target: + at most 8 s); "
              f"peak {stage['peak_mb']} MB")
        print(f"  load per round: {ex['load']}")
    if "demo_sweep" in results:
        e = results["demo_sweep"]
        print(f"== (e) template-only dvc exp run {e['template_only_exp_run_seconds']} s vs full demo repro without "
              f"pretraining {e['full_repro_without_pretraining_seconds']} s: {e['ratio']:.3f} (target <= 0.10)")
        for short, d in results["int8_on_demo"].items():
            print(f"== int8 on the demo's {short} (model-dataset): cosine to fp32 mean {d['cosine_mean']}, min {d['cosine_min']}; "
                  f"top-1 '{d['best_template']}' fp32 {d['top1_fp32']} int8 {d['top1_int8']}; max |difference| "
                  f"over templates {d['max_abs_top1_difference_over_templates']} (target <= 0.01)")
    p = results["probe"]
    print(f"== (f) probe: {p['epochs']} epochs on {p['train_images']}x{p['dim']} in {p['seconds']} s (target <= 3 s)")
    m = results["memory"]
    print(f"== (g) extract peak memory: {m['peak_mb_1x']} MB at {m['images_1x']} images, {m['peak_mb_4x']} MB at "
          f"{4 * m['images_1x']}: {m['ratio']:.3f} (target <= 1.25)")
    print(f"benchmark took {results['bench_seconds']} s")


if __name__ == "__main__":
    main()
