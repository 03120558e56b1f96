"""Tests for clip_study/demo/shapes.py: determinism, held-out split, rendering and captions."""

import re

import numpy as np
import pytest
from PIL import Image


from clip_study.demo.shapes import (
    COLOURS,
    SHAPES,
    all_classes,
    caption,
    class_name,
    folder_name,
    held_out_pairs,
    pretraining_set,
    render,
    write_image_folder,
)
from clip_study.pipeline.sections.generate import HELD_OUT_MAX


def names_pair(text: str, colour: str, shape: str) -> bool:
    """True if a caption mentions both words of the pair (covers "this circle is red" too)."""
    words = set(re.findall(r"[a-z]+", text))
    return colour in words and shape in words


def test_names_and_class_order():
    assert len(COLOURS) == 7 and len(SHAPES) == 7
    assert class_name("red", "circle") == "red circle"
    assert folder_name("red", "circle") == "red_circle"
    classes = all_classes()
    assert len(classes) == 49 and len(set(classes)) == 49
    assert classes[0] == ("red", "circle") and classes[1] == ("red", "square")
    assert classes[7][0] == "green"


def test_pretraining_set_is_deterministic():
    held_out = held_out_pairs(0)
    images_a, captions_a, labels_a = pretraining_set(200, 3, held_out)
    images_b, captions_b, labels_b = pretraining_set(200, 3, held_out)
    assert images_a.shape == (200, 32, 32, 3) and images_a.dtype == np.uint8
    assert np.array_equal(images_a, images_b)
    assert captions_a == captions_b
    assert np.array_equal(labels_a, labels_b)

    images_c, captions_c, labels_c = pretraining_set(200, 4, held_out)
    assert not np.array_equal(images_a, images_c)
    assert captions_a != captions_c
    assert not np.array_equal(labels_a, labels_c)


def test_render_is_deterministic_given_rng_state():
    first = np.asarray(render("blue", "star", np.random.default_rng(5)))
    second = np.asarray(render("blue", "star", np.random.default_rng(5)))
    other = np.asarray(render("blue", "star", np.random.default_rng(6)))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("seed", [0, 1, 2, 123])
def test_held_out_pairs_cover_each_colour_and_shape_once(seed):
    pairs = held_out_pairs(seed, 7)
    assert len(pairs) == 7
    assert sorted(c for c, _ in pairs) == sorted(COLOURS)
    assert sorted(s for _, s in pairs) == sorted(SHAPES)
    assert held_out_pairs(seed, 3) == pairs[:3]
    assert held_out_pairs(seed, 0) == []


def test_the_params_schema_allows_as_many_held_out_pairs_as_there_are_colours_and_shapes():
    most = min(len(COLOURS), len(SHAPES))
    assert HELD_OUT_MAX == most and len(held_out_pairs(0, most)) == most


def test_held_out_pairs_differ_between_seeds():
    assert len({tuple(held_out_pairs(seed)) for seed in range(10)}) > 1


@pytest.mark.parametrize("count", [-1, 8])
def test_held_out_pairs_rejects_bad_count(count):
    with pytest.raises(ValueError, match=str(count)):
        held_out_pairs(0, count)


def test_pretraining_set_never_contains_held_out_classes():
    held_out = held_out_pairs(1)
    _, captions, labels = pretraining_set(1500, 1, held_out)
    classes = all_classes()
    held_out_indices = {classes.index(pair) for pair in held_out}
    assert not held_out_indices & set(labels.tolist())
    assert set(labels.tolist()) == set(range(49)) - held_out_indices  # uniform over the rest
    for text in captions:
        for colour, shape in held_out:
            assert not names_pair(text, colour, shape), text
    for text, label in zip(captions, labels.tolist()):
        assert names_pair(text, *classes[label]), text


def nearest_colour(rgb: np.ndarray) -> str:
    return min(COLOURS, key=lambda name: np.sum((np.array(COLOURS[name]) - rgb) ** 2))


@pytest.mark.parametrize("colour", list(COLOURS))
def test_render_shape_colour_dominates_brightest_pixels(colour):
    # The smallest shapes cover ~6 % of the image, so look at the brightest 5 %.
    rng = np.random.default_rng(7)
    for shape in SHAPES:
        for size in (32, 48):
            image = render(colour, shape, rng, size)
            assert image.mode == "RGB" and image.size == (size, size)
            pixels = np.asarray(image).reshape(-1, 3).astype(float)
            brightness = pixels.max(axis=1)
            brightest = pixels[brightness >= np.quantile(brightness, 0.95)]
            assert nearest_colour(brightest.mean(axis=0)) == colour, (colour, shape, size)


def test_caption_names_class_and_has_bare_labels_rarely():
    rng = np.random.default_rng(0)
    captions = [caption("red", "circle", rng) for _ in range(2000)]
    assert all(names_pair(text, "red", "circle") for text in captions)
    assert np.mean(["red circle" in text for text in captions]) > 0.8
    bare = np.mean([text == "red circle" for text in captions])
    assert 0.01 <= bare <= 0.06
    assert len(set(captions)) >= 12
    assert max(len(text.split()) for text in captions) <= 8  # no long unrelated sentences


def test_caption_uses_an_before_vowel():
    rng = np.random.default_rng(0)
    captions = [caption("orange", "circle", rng) for _ in range(500)]
    assert not any(re.search(r"\ba orange\b", text) for text in captions)
    assert any("an orange circle" in text for text in captions)
    red = [caption("red", "circle", rng) for _ in range(500)]
    assert not any(re.search(r"\ban red\b", text) for text in red)


def test_write_image_folder_layout(tmp_path):
    root = tmp_path / "eval" / "shapes"
    write_image_folder(root, per_class=2, seed=0, size=32)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(folder_name(c, s) for c, s in all_classes())
    for folder in folders:
        files = sorted(folder.iterdir())
        assert [f.name for f in files] == ["0000.png", "0001.png"]
        for file in files:
            with Image.open(file) as image:
                assert image.mode == "RGB" and image.size == (32, 32)


def test_write_image_folder_is_deterministic_and_independent_of_pretraining(tmp_path):
    write_image_folder(tmp_path / "a", per_class=1, seed=0)
    write_image_folder(tmp_path / "b", per_class=1, seed=0)
    first = np.asarray(Image.open(tmp_path / "a" / "red_circle" / "0000.png"))
    assert np.array_equal(first, np.asarray(Image.open(tmp_path / "b" / "red_circle" / "0000.png")))
    pretraining, _, _ = pretraining_set(300, 0, [])
    assert not any(np.array_equal(first, image) for image in pretraining)
