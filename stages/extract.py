"""Stage extract: image embeddings (projected, unnormalised) of the train and test images, for one model (of a
shift set's or a caption dataset's subset, its test images: the only ones it has; ``--fetched-by``: the stage that
wrote the subset, named in the fix of a damaged one, when not fetch or fetch_shift).

Images are decoded and preprocessed in DataLoader workers while the model encodes, and features go to
resumable shards (see clip_study/models/extraction.py): an interrupted run loses at most one shard of work.
With ``extract.engine: ray`` the encoding runs on a Ray cluster instead (clip_study/models/ray_extraction.py),
into the same shards, giving the same features. The metrics file records the model (family, parameters)
and how it encoded: only what a rerun reproduces. The speed this run measured, and the machine it ran on, are
printed and written to ``--speed`` (``data/speed/<model>/<dataset>.json`` in the pipelines), a log nothing tracks.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import torch

from clip_study.data.subset import read_split, split_names
from clip_study.files import write_json
from clip_study.metrics_files.extract import ExtractMetrics
from clip_study.models.extraction import default_workers, extract_features
from clip_study.models.families import embedding_dim, family_of, parameter_count
from clip_study.models.loading import load_image_processor, load_model, pick_device
from clip_study.models.pixels import available_cores
from clip_study.models.precision import resolve_precision
from clip_study.models.speed import measured_speed, speed_line
from clip_study.pipeline.params import for_param, load_params, model_entry, section
from clip_study.pipeline.sections.extract import EXTRACT
from clip_study.pipeline.sections.model import MODEL
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "out": REQUIRED, "metrics": "", "speed": "", "fetched_by": ""},
                      argv, per_model=True, per_dataset=True)  # the dataset: named in messages only (the subset is given)
    params = load_params(args.params, MODELS, MODEL, EXTRACT)
    short, checkpoint, family = model_entry(params, args.model)
    model_params, settings = section(params, "model"), section(params, "extract")  # checked by load_params
    with for_param("model.device"):
        device = pick_device(str(model_params["device"]))
    with for_param("extract.precision"):
        precision = resolve_precision(str(settings["precision"]), device)
    cores = available_cores()
    threads, workers = settings["threads"], settings["workers"]
    torch.set_num_threads(cores if threads == "auto" else threads)
    workers = default_workers(device, cores) if workers == "auto" else workers

    engine = settings["engine"]
    if engine == "ray":
        from clip_study.models import ray_extraction  # ray is an optional extra: imported only here

        with for_param("extract.engine"):
            ray_extraction.import_ray()  # before the model loads: a missing extra is a one-line error at once
    with for_param(f"models.{short}.name"):
        model = load_model(checkpoint, device, family)
        processor = load_image_processor(checkpoint)
    names = split_names(args.subset)  # a shift set's or a caption dataset's subset: its test split alone
    fetched_by = args.fetched_by or ("fetch" if "train" in names else "fetch_shift")  # the stage that wrote it
    splits = {split: read_split(args.subset, split, fix=rebuild(fetched_by)) for split in names}
    name = short + (f" on {args.dataset}" if args.dataset else "")
    log, shard_size = (lambda message: print(f"extract {name}: {message}")), settings["shard_size"]
    if engine == "ray":
        actors = settings["ray_actors"]
        with ExitStack() as stack:
            with for_param("extract.ray_address"):
                ray = stack.enter_context(ray_extraction.cluster(settings["ray_address"], cores, log))
            encoded, seconds = ray_extraction.extract_features_ray(
                ray, model, processor, splits, Path(args.out), checkpoint, precision, settings["batch_size"],
                torch.get_num_threads(), shard_size, None if actors == "auto" else actors, log=log, family=family)
    else:
        encoded, seconds = extract_features(model, processor, splits, Path(args.out), precision,
                                            settings["batch_size"], workers, shard_size, log=log)
    dim = embedding_dim(model)
    print(f"extract {name}: features of dimension {dim} -> {args.out}")
    speed = measured_speed(
        model=short, checkpoint=checkpoint, images_encoded=encoded, seconds=seconds, device=str(device),
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, precision=precision,
        engine=engine, threads=torch.get_num_threads(), workers=workers, batch_size=settings["batch_size"],
        torch_version=torch.__version__)
    print(f"extract {name}: {speed_line(speed)}" + (f" -> {args.speed}" if args.speed else ""))
    if args.speed:
        write_json(args.speed, speed.to_json())
    if args.metrics:
        write_json(args.metrics, ExtractMetrics(
            model=short, checkpoint=checkpoint, family=family_of(model).name,
            parameters=parameter_count(model), embedding_dim=dim, device=str(device), precision=precision,
            engine=engine, images=sum(len(paths) for paths, _ in splits.values()),
        ).to_json())


if __name__ == "__main__":
    run(main)
