"""Shared fixtures: a tiny random CLIP checkpoint and generated image folders, all built offline."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub
os.environ["DVC_NO_ANALYTICS"] = "1"

from pathlib import Path

import pytest

from clip_study.demo import shapes, tinyclip
from tests.dvc_repo import commit, project_copy, repro, set_params


def one_dataset(source: str, name: str = "shapes", **settings) -> dict:
    """A params ``datasets`` section of one dataset read from ``source``, every key given (``settings``: any
    to change)."""
    entry = {"source": source, "split": "train", "classes": "all", "max_per_class": None, "test_size": 0.2,
             "seed": 0, "class_names": None, "templates": None, "on_bad_image": "skip"}
    return {name: {**entry, **settings}}


def shape_prompts() -> list[str]:
    return [f"{template} {shapes.class_name(c, s)}" for c, s in shapes.all_classes()
            for template in ("a photo of a", "an image of a", "")]


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A random-weight small CLIP saved like a hub checkpoint (config, safetensors, tokenizer, processor), with
    CLIP's 77 text positions: the study's long template, which fits real CLIP, must not lose its class name."""
    out = tmp_path_factory.mktemp("tiny_clip")
    tinyclip.save_checkpoint(out, *tinyclip.random_small_clip(shape_prompts(), seed=0, max_text_length=77))
    return out


@pytest.fixture(scope="session")
def other_clip_dir(tmp_path_factory) -> Path:
    """A second random small CLIP (another seed), for 'the model changed' tests."""
    out = tmp_path_factory.mktemp("other_clip")
    tinyclip.save_checkpoint(out, *tinyclip.random_small_clip(shape_prompts(), seed=1, max_text_length=77))
    return out


def small_siglip_dir(tmp_path_factory, max_text_length: int) -> Path:
    """A random-weight small SigLIP saved like a hub checkpoint, its text narrower than its vision (the text
    head projects to the image width)."""
    out = tmp_path_factory.mktemp(f"siglip_{max_text_length}")
    tinyclip.save_checkpoint(out, *tinyclip.random_small_siglip(shape_prompts(), seed=0, text_hidden=16,
                                                                max_text_length=max_text_length))
    return out


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    """With SigLIP's 64 text positions: transformers' zero-shot pipeline pads SigLIP texts to 64."""
    return small_siglip_dir(tmp_path_factory, 64)


@pytest.fixture(scope="session")
def long_text_siglip_dir(tmp_path_factory) -> Path:
    """With CLIP's 77 text positions, for the pipeline: the study's long template, which fits real SigLIP's
    tokenizer in 64, takes more tokens than that from the tiny tokenizer."""
    return small_siglip_dir(tmp_path_factory, 77)


@pytest.fixture(scope="session")
def shape_folder(tmp_path_factory) -> Path:
    """49 class folders (red_circle, ...) of 4 generated 32x32 PNGs each."""
    root = tmp_path_factory.mktemp("shapes")
    shapes.write_image_folder(root, per_class=4, seed=0)
    return root


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, tiny_clip_dir, long_text_siglip_dir, shape_folder) -> tuple[Path, set[str]]:
    """The main pipeline run once with `dvc repro` in a fresh git + DVC repo, on two tiny models (a CLIP and a
    SigLIP) and 6 shape classes; returns the repo and the stages that ran."""
    repo = project_copy(tmp_path_factory.mktemp("repo"), "dvc.yaml", "params.yaml", "data/.gitignore")
    set_params(repo, datasets=one_dataset(str(shape_folder), classes=6, test_size=0.5),
               models={"clip": {"name": str(tiny_clip_dir), "family": "auto"},
                       "siglip": {"name": str(long_text_siglip_dir), "family": "hf_siglip"}}, model__device="cpu",
               extract__batch_size=5,
               probe__epochs=3, probe__lr=0.01, probe__batch_size=4, logreg__val_fraction=0.5,
               evaluation__val_fraction=0.5, evaluation__resamples=300)  # 2 train images per class: fit 1, validate 1
    commit(repo)
    return repo, repro(repo)


def library_modules() -> set[str]:
    """Every module of the library, by its dotted name."""
    root = Path(__file__).resolve().parents[1]
    return {".".join(file.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            for file in (root / "clip_study").rglob("*.py")}


def pytest_sessionfinish(session, exitstatus):
    """The fast tier (``pytest -m "not slow"`` over all of tests/) must still load every library module, so
    that a broken one fails it: a module that no fast test imported fails the run, by name."""
    config = session.config
    whole_suite = [Path(arg).resolve() for arg in config.args] in ([], [Path(config.rootpath, "tests").resolve()])
    if (config.getoption("markexpr") != "not slow" or not whole_suite or exitstatus != 0 or config.getoption("keyword")
            or config.getoption("collectonly")):
        return
    import sys

    untouched = sorted(library_modules() - set(sys.modules))
    if untouched:
        print(f"\nthe fast tier loaded no test of {', '.join(untouched)}: add a fast test that exercises it")
        session.exitstatus = 1
