"""Shared fixtures: a tiny random CLIP checkpoint and generated image folders, all built offline."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub
os.environ["DVC_NO_ANALYTICS"] = "1"

from pathlib import Path

import pytest

from stages import shapes, tinyclip


def shape_prompts() -> list[str]:
    return [f"{template} {shapes.class_name(c, s)}" for c, s in shapes.all_classes()
            for template in ("a photo of a", "an image of a", "")]


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A random-weight small CLIP saved like a hub checkpoint (config, safetensors, tokenizer, processor)."""
    out = tmp_path_factory.mktemp("tiny_clip")
    tinyclip.save_checkpoint(out, *tinyclip.random_small_clip(shape_prompts(), seed=0))
    return out


@pytest.fixture(scope="session")
def other_clip_dir(tmp_path_factory) -> Path:
    """A second random small CLIP (another seed), for 'the model changed' tests."""
    out = tmp_path_factory.mktemp("other_clip")
    tinyclip.save_checkpoint(out, *tinyclip.random_small_clip(shape_prompts(), seed=1))
    return out


@pytest.fixture(scope="session")
def shape_folder(tmp_path_factory) -> Path:
    """49 class folders (red_circle, ...) of 4 generated 32x32 PNGs each."""
    root = tmp_path_factory.mktemp("shapes")
    shapes.write_image_folder(root, per_class=4, seed=0)
    return root
