"""What every stage entry point shares: its command-line options and how a user's mistake ends it.

Each stage reads one section of a params file (``params.yaml`` for the main pipeline, ``demo/params.yaml``
for the offline demo) and takes its input and output paths as options, so the same stage serves both.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from clip_study.errors import UserError


REQUIRED = None  # a path option without a default: no one path is right for every pair (dvc.yaml passes each)


def parse_args(description: str, paths: dict[str, str | None], argv: list[str] | None = None,
               per_model: bool = False, per_dataset: bool = False, per_shift: bool = False,
               per_caption_set: bool = False) -> argparse.Namespace:
    """Standard stage options: ``--params FILE`` plus one ``--NAME PATH`` per path, with its default (the path
    the pipelines use, relative to the folder they run in; '': none) or REQUIRED, and for a stage that runs once
    per model, ``--model SHORT_NAME`` (default: the only model listed), once per dataset, ``--dataset``, once per
    shift set, ``--shift``, once per caption dataset, ``--captions``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if per_model:
        parser.add_argument("--model", default=None, help="the short name of one of the params' models "
                                                          "(default: the only one)")
    if per_dataset:
        parser.add_argument("--dataset", default=None, help="the short name of one of the params' datasets "
                                                            "(default: the only one)")
    if per_shift:
        parser.add_argument("--shift", default=None, help="the short name of one of the params' shifts "
                                                          "(default: the only one)")
    if per_caption_set:
        parser.add_argument("--captions", default=None, help="the short name of one of the params' caption "
                                                             "datasets (default: the only one)")
    parser.add_argument("--verbose", action="store_true",
                        help="on an error, show the traceback (as CLIP_STUDY_DEBUG=1 does)")
    for name, default in paths.items():
        option = f"--{name.replace('_', '-')}"
        if default is REQUIRED:
            parser.add_argument(option, dest=name, required=True, help="(required: one per model, dataset or pair)")
        else:
            parser.add_argument(option, dest=name, default=default, help=f"(default: {default or 'none'})")
    return parser.parse_args(argv)


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main(argv)``: a UserError becomes one ``error:`` line on stderr per line of its message
    (a params file's problems: one each) and exit code 2.

    Pass --verbose (or set CLIP_STUDY_DEBUG=1) to see the full traceback instead (the arguments are
    looked at here: the parsed ones stay inside ``main``).
    """
    arguments = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except UserError as error:
        if os.environ.get("CLIP_STUDY_DEBUG") or "--verbose" in arguments:
            raise
        print("".join(f"error: {line}\n" for line in str(error).split("\n")), end="", file=sys.stderr)
        sys.exit(2)


# stages that run once per (model, dataset) pair (``matrix``: extract@clip_b32-tiny_imagenet, ...) or (model, shift
# set) pair (extract_shift@clip_b32-imagenet_r), once per dataset or shift set (``foreach``: fetch@tiny_imagenet,
# fetch_shift@imagenet_r) and once per model (the demo's pretrain@clip); a shift set's or a caption dataset's
# (fetch_captions@flickr30k, retrieval@clip_b32-flickr30k) short name has no '-' either
PER_PAIR_STAGES = {"extract", "zeroshot", "similarity", "heldout", "probe", "logreg", "fewshot", "zsinit", "wiseft",
                   "summary", "report", "extract_shift", "shift", "extract_captions", "embed_captions",
                   "retrieval"}
PER_DATASET_STAGES = {"scan", "fetch", "fetch_shift", "fetch_captions"}
PER_MODEL_STAGES = {"pretrain"}


def rebuild(stage: str) -> str:
    """The fix for a damaged or missing file that ``stage`` writes: rerun that stage alone. DVC names the
    stage it runs in ``DVC_STAGE`` (``demo/dvc.yaml:similarity@clip-shapes``), which gives the pipeline file and
    the model and dataset or shift set (a short name of either has no '-'); run by hand, a stage names the one in
    ``dvc.yaml``. A stage of another pair (a shift stage reading its source dataset's probe) is named in full:
    ``rebuild("probe@clip-shapes")``."""
    pipeline, _, running = os.environ.get("DVC_STAGE", "").rpartition(":")
    suffix = running.partition("@")[2]
    model, _, dataset = suffix.rpartition("-") if running.partition("@")[0] in PER_PAIR_STAGES else ("", "", "")
    model = model or (suffix if running.partition("@")[0] in PER_MODEL_STAGES else "")
    dataset = dataset or (suffix if running.partition("@")[0] in PER_DATASET_STAGES else "")
    target = {**{name: f"{name}@{model}-{dataset}" for name in PER_PAIR_STAGES if model and dataset},
              **{name: f"{name}@{dataset}" for name in PER_DATASET_STAGES if dataset},
              **{name: f"{name}@{model}" for name in PER_MODEL_STAGES if model}}.get(stage, stage)
    return f"rebuild it with `dvc repro --force --single-item {pipeline + ':' if pipeline else ''}{target}`"
