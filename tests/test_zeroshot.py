"""Prompt ensembles and per-class prompts, checked against a hand computation with CLIPModel.forward."""

import numpy as np
import pytest
import torch

from clip_study.errors import UserError
from clip_study.evaluation.prompts import CLIP_TEMPLATES, CLIP_TEMPLATES_7, class_prompts, read_templates
from clip_study.evaluation.similarity import l2_normalize
from clip_study.evaluation.zeroshot import class_prompt_classifier, prompts_per_class, zero_shot_classifier
from clip_study.models.encoding import encode_texts
from clip_study.models.loading import load_model, load_tokenizer

NAMES = ["red circle", "blue square", "green star"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_clip_dir):
    return load_model(str(tiny_clip_dir), torch.device("cpu")), load_tokenizer(str(tiny_clip_dir))


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
    ours = zero_shot_classifier(model, tokenizer, NAMES, templates)
    expected = np.stack([by_hand(model, tokenizer, [t.replace("{}", n) for t in templates]) for n in NAMES])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    # a one-template ensemble ranks exactly like that template alone
    single = encode_texts(model, tokenizer, class_prompts("a photo of a {}", NAMES))
    np.testing.assert_allclose(zero_shot_classifier(model, tokenizer, NAMES, ["a photo of a {}"]),
                               l2_normalize(single), atol=1e-6)


def test_per_class_prompts(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = {"red_circle": ["a red circle", "a round red thing"], "blue square": ["a blue square"],
               "green star": ["a photo of a green star", "a star, green", "green star"]}
    classes = [{"id": "red_circle", "name": "red circle"}, {"id": "blue_square", "name": "blue square"},
               {"id": "green_star", "name": "green star"}]
    ours = class_prompt_classifier(model, tokenizer, prompts_per_class(prompts, classes), NAMES)  # by id or by name
    expected = np.stack([by_hand(model, tokenizer, p) for p in prompts.values()])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    del prompts["green star"]
    with pytest.raises(UserError, match=r"no prompts for \['green star'\]"):
        prompts_per_class(prompts, classes)


def test_ensemble_templates_from_files_and_lists():
    assert len(read_templates(CLIP_TEMPLATES)) == 80
    assert read_templates(CLIP_TEMPLATES_7)[0] == "itap of a {}."
    assert read_templates(["a {}", "the {}"], "mine") == ["a {}", "the {}"]
    with pytest.raises(UserError, match="mine: nowhere.txt: not found; check the path"):
        read_templates("nowhere.txt", "mine")
    with pytest.raises(UserError, match="exactly once"):
        read_templates(["a {}", "no placeholder"], "mine")
