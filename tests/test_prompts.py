"""Prompt templates: readable unique keys, and class prompts that replace only the placeholder."""

import pytest

from clip_study.errors import UserError
from clip_study.evaluation import prompts

STUDY_TEMPLATES = ["a photo of a {}", "a picture of a {}", "an image of a {}", "{}", "a wild animal: {}",
                   "Beneath the fading sunset, the curious child wandered along the winding path. "
                   "This is an image of {}."]


def test_template_keys_are_readable_and_unique():
    keys = prompts.template_keys(STUDY_TEMPLATES)
    assert list(keys) == ["a_photo_of_a", "a_picture_of_a", "an_image_of_a", "label_only", "a_wild_animal",
                          "beneath_the_fading_sunset_the_etc"]
    assert list(keys.values()) == STUDY_TEMPLATES
    assert list(prompts.template_keys(["a {}", "A {}!"])) == ["a", "a_1"]
    assert prompts.template_keys({"photo": "a photo of a {}"}) == {"photo": "a photo of a {}"}


@pytest.mark.parametrize("bad", [["a photo"], ["{} and {}"], [], "a {}", {"bad key!": "a {}"}])
def test_bad_templates_name_the_value(bad):
    with pytest.raises(UserError, match="^templates"):
        prompts.template_keys(bad)


def test_class_prompts_replace_only_the_placeholder():
    assert prompts.class_prompts("a {} {{x}}", ["cat", "dog"]) == ["a cat {{x}}", "a dog {{x}}"]

