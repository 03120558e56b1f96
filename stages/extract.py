"""Stage extract: CLIP image embeddings (projected, unnormalised) of the train and test images.

Images are decoded and preprocessed in DataLoader workers while the model encodes, and features
go to resumable shards (see stages/shards.py): an interrupted run loses at most one shard of work.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stages import clip, data, pixels, shards
from stages.config import load_params, parse_args, run, section


def default_workers(device: torch.device, cores: int) -> int:
    """Decoding workers: on a GPU, enough to feed it; on a CPU the model needs every core, and
    preprocessing is about 5 % of a ViT-B/32 forward, so one worker only from 4 cores up."""
    if device.type == "cpu":
        return 0 if cores < 4 else 1
    return max(1, min(8, cores - 1))


def main() -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "out": "data/features"})
    params = load_params(args.params)
    model_params, settings = section(params, "model"), section(params, "extract")
    device = clip.pick_device(str(model_params.get("device", "auto")))
    precision = clip.resolve_precision(str(settings.get("precision", "auto")), device)
    cores = pixels.available_cores()
    threads, workers = settings.get("threads", "auto"), settings.get("workers", "auto")  # checked by load_params
    torch.set_num_threads(cores if threads == "auto" else threads)
    workers = default_workers(device, cores) if workers == "auto" else workers
    batch_size, shard_size = settings["batch_size"], settings.get("shard_size", 4096)

    model = clip.load_model(str(model_params["name"]), device)
    processor = clip.load_image_processor(str(model_params["name"]))
    preprocess, preprocessing = pixels.preprocessor(processor)
    encode = clip.image_encoder(model, precision)
    key = shards.settings_key(model=shards.model_fingerprint(model), precision=precision,
                              preprocessing=preprocessing, processor=processor.to_dict())

    out = Path(args.out)
    work = out.with_name(out.name + ".partial")
    splits = {split: data.read_split(args.subset, split) for split in ("train", "test")}
    plans = {split: shards.plan(split, paths, shard_size, key) for split, (paths, _) in splits.items()}
    shards.prune(work, [shard for plan in plans.values() for shard in plan])
    print(f"extract: {torch.get_num_threads()} threads, {workers} workers, {precision}, "
          f"{preprocessing} preprocessing, batches of {batch_size} on {device}")
    for split, (paths, labels) in splits.items():
        plan = plans[split]
        todo = shards.missing(work, plan)
        if len(todo) < len(plan):
            print(f"extract: resuming {split}: {len(plan) - len(todo)} of {len(plan)} shards already encoded")
        todo_paths = [path for shard in todo for path in paths[shard.start:shard.stop]]
        batches = pixels.pixel_batches(todo_paths, preprocess, batch_size, workers, device.type == "cuda")
        shards.write(work, todo, clip.encode_images(encode, batches, len(todo_paths), desc=f"extract {split}"))
        shards.assemble(work, plan, labels, model.config.projection_dim, out / f"{split}.npz")
    shards.remove(work)
    print(f"extract: features of dimension {model.config.projection_dim} -> {out}")


if __name__ == "__main__":
    run(main)
