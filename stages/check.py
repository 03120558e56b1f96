"""Stage check (the first stage of both pipelines): the whole params file, checked before any other stage runs.

DVC reads each stage's params when it comes to that stage, and a key it cannot find (say ``probe.epoch``
for ``probe.epochs``) stops the run with its own message, after it has already removed the outputs of the
stages before. This stage runs at every ``dvc repro`` (``always_changed``) ahead of all the others, so the
project's messages, one line per problem with its "did you mean", come first and nothing is touched. Its output
never changes while the params are valid, so it reruns nothing. The other stages check only the sections they
read, so that each depends on those checks alone.

Every local path the params name (the dataset folder, the models' checkpoint directories, the class-names,
template and prompts files) is checked here too: a folder not made yet, or a misspelt path, stops the run now,
not when the stage reading it comes. A path that a stage of this pipeline writes (the demo's images and
checkpoints) may be absent: DVC lists the outputs its stages declare, foreach stages expanded (about a second).
"""

from __future__ import annotations

from pathlib import Path

from clip_study.errors import UserError
from clip_study.files import write_json
from clip_study.pipeline.schema import check_file
from clip_study.pipeline.stage import parse_args, run


def declared_outputs() -> list[str]:
    """The absolute paths the stages of the DVC project in this folder write (outside a DVC project: none)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        with Repo(".") as repo:
            return [out.fs_path for stage in repo.index.stages for out in stage.outs]
    except NotDvcRepoError:
        return []


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"out": "data/params_checked.json"}, argv)
    from dvc.exceptions import DvcException

    try:
        written = declared_outputs()
    except DvcException as error:  # DVC expands the foreach stages over the params' models: a bad section stops it
        check_file(args.params)
        raise UserError(f"DVC cannot list this pipeline's stages ({str(error).splitlines()[0]}): fix what it names "
                        "in dvc.yaml or the params") from error
    check_file(args.params, written)
    write_json(args.out, {"params": Path(args.params).name, "valid": True})
    print(f"check: {args.params} is valid")


if __name__ == "__main__":
    run(main)
