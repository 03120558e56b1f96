"""Stage scan: what fetch will read, in a small file that changes exactly when the source does.

An image folder named by a dataset's ``source`` is the user's, outside the pipeline, so fetch cannot declare it
as a dependency. This stage runs at every ``dvc repro`` (``always_changed``) and records, per class folder,
how many image files it holds, their bytes and a digest of their names, sizes and modification times (no
image is opened), and the hash of its ``class_names`` file. fetch depends on the record, so it reruns
when an image is added, removed, replaced or edited, or the names change, and only then. A folder of a hub
dataset's parquet files is recorded by its files' names, sizes and modification times, and the split; a
webdataset folder by its split's shards likewise and the hashes of its class-names and templates files; a hub
dataset by id and split. A shift set (``--shift``) is scanned the same way, with the hash of its ``class_map`` file; a
caption dataset (``--captions``) too, a folder with a captions file by each of its files and image folders.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from clip_study.data import captions, sources, webdataset
from clip_study.files import read_bytes, write_json
from clip_study.pipeline.params import for_param, load_params, named_entry
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.sections.datasets import DATASETS
from clip_study.pipeline.sections.shifts import SHIFTS
from clip_study.pipeline.stage import REQUIRED, parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"out": REQUIRED}, argv, per_dataset=True, per_shift=True, per_caption_set=True)
    kind = "shifts" if args.shift else "captions" if args.captions else "datasets"
    short, params = named_entry(load_params(args.params, DATASETS, SHIFTS, CAPTIONS), kind,
                                args.shift or args.captions or args.dataset)  # checked
    key, dataset = f"{kind}.{short}", str(params["source"])
    with for_param(f"{key}.source"):
        folder = sources.is_folder(dataset)
        captions_file = folder and kind == "captions" and captions.captions_file(Path(dataset), str(params["split"]))
        shards = folder and not captions_file and sources.is_webdataset(Path(dataset))
        parquet = folder and not (captions_file or shards) and sources.is_parquet_folder(Path(dataset))
        listing = sources.folder_listing(Path(dataset)) if folder and not (parquet or shards or captions_file) else None
        if captions_file:  # its captions files and image folders: no class folder
            listing = captions.folder_listing(Path(dataset))
        files = sources.files_listing(Path(dataset)) if parquet else None
    if shards:
        with for_param(f"{key}.split"):  # a missing split or a bad nshards.txt is the split's problem
            files = webdataset.shards_listing(Path(dataset), str(params["split"]))
    digests = {}
    for name in ("class_names", "class_map") if args.shift else () if args.captions else ("class_names",):
        with for_param(f"{key}.{name}"):
            digests[f"{name}_md5"] = hashlib.md5(read_bytes(params[name])).hexdigest() if params[name] else None
    write_json(args.out, {
        "dataset": dataset, "split": None if folder and not (parquet or shards) else str(params["split"]),
        **digests,
        "classes": listing, "files": files,
    })
    if listing:
        print(f"scan: {len(listing)} files and folders of {dataset}" if captions_file else
              f"scan: {sum(c['images'] for c in listing.values())} images in {len(listing)} class folders of {dataset}")
    elif files and shards:
        print(f"scan: {len(files)} shards and metadata files of {dataset} {params['split']}")
    elif files:
        print(f"scan: {len(files)} parquet files ({sum(f['bytes'] for f in files.values())} bytes) in {dataset}")


if __name__ == "__main__":
    run(main)
