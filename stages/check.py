"""Stage check (the first stage of both pipelines): the whole params file, checked before any other stage runs.

DVC reads each stage's params when it comes to that stage, and a key it cannot find (say ``probe.epoch``
for ``probe.epochs``) stops the run with its own message, after it has already removed the outputs of the
stages before. This stage runs at every ``dvc repro`` (``always_changed``) ahead of all the others, so the
project's one-line message, with its "did you mean", comes first and nothing is touched. Its output never
changes while the params are valid, so it reruns nothing. The other stages check only the sections they
read, so that each depends on those checks alone.
"""

from __future__ import annotations

from pathlib import Path

from clip_study.files import write_json
from clip_study.pipeline.schema import check_file
from clip_study.pipeline.stage import parse_args, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"out": "data/params_checked.json"}, argv)
    check_file(args.params)
    write_json(args.out, {"params": Path(args.params).name, "valid": True})
    print(f"check: {args.params} is valid")


if __name__ == "__main__":
    run(main)
