"""Prompt ensembles and per-class prompts, checked against a hand computation with CLIPModel.forward."""

import json

import numpy as np
import pytest
import torch

from stages import classify, clip
from stages.config import UserError
from stages.zeroshot import encode_class_prompts, encode_ensemble

NAMES = ["red circle", "blue square", "green star"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_clip_dir):
    return clip.load_model(str(tiny_clip_dir), torch.device("cpu")), clip.load_tokenizer(str(tiny_clip_dir))


def by_hand(model, tokenizer, prompts: list[str]) -> np.ndarray:
    """Mean of forward()'s normalised text embeddings, one prompt at a time, renormalised."""
    pixels = torch.zeros(1, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    with torch.no_grad():
        embeds = torch.cat([model(**tokenizer([p], return_tensors="pt"), pixel_values=pixels).text_embeds
                            for p in prompts])
    mean = embeds.mean(0)
    return (mean / mean.norm()).numpy()


def test_ensemble_equals_a_hand_computed_one(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    templates = ["a photo of a {}", "a drawing of the {}.", "{}"]
    ours = encode_ensemble(model, tokenizer, templates, NAMES)
    expected = np.stack([by_hand(model, tokenizer, [t.replace("{}", n) for t in templates]) for n in NAMES])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    # a one-template ensemble ranks exactly like that template alone
    single = clip.encode_texts(model, tokenizer, classify.class_prompts("a photo of a {}", NAMES))
    np.testing.assert_allclose(encode_ensemble(model, tokenizer, ["a photo of a {}"], NAMES),
                               classify.l2_normalize(single), atol=1e-6)


def test_per_class_prompts(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    prompts = {"red_circle": ["a red circle", "a round red thing"], "blue square": ["a blue square"],
               "green star": ["a photo of a green star", "a star, green", "green star"]}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    classes = [{"id": "red_circle", "name": "red circle"}, {"id": "blue_square", "name": "blue square"},
               {"id": "green_star", "name": "green star"}]
    ours = encode_class_prompts(model, tokenizer, str(tmp_path / "prompts.json"), classes)  # by id or by name
    expected = np.stack([by_hand(model, tokenizer, p) for p in prompts.values()])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    del prompts["green star"]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    with pytest.raises(UserError, match=r"no prompts for \['green star'\]"):
        encode_class_prompts(model, tokenizer, str(tmp_path / "prompts.json"), classes)


def test_ensemble_templates_from_files_and_lists(tmp_path):
    assert len(classify.ensemble_templates("stages/assets/clip_imagenet_templates.txt", "clip_80")) == 80
    assert classify.ensemble_templates("stages/assets/clip_imagenet_templates_7.txt", "clip_7")[0] == "itap of a {}."
    assert classify.ensemble_templates(["a {}", "the {}"], "mine") == ["a {}", "the {}"]
    with pytest.raises(UserError, match="zeroshot.ensembles.mine: file nowhere.txt not found"):
        classify.ensemble_templates("nowhere.txt", "mine")
    with pytest.raises(UserError, match="exactly once"):
        classify.ensemble_templates(["a {}", "no placeholder"], "mine")
