"""Prompt templates, similarity scoring and the linear probe."""

import numpy as np
import pytest

from clip_study.errors import UserError
from clip_study.evaluation import linear_probe, prompts, similarity

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


def test_cosine_ignores_norms_dot_does_not():
    text = np.array([[1.0, 0.0], [0.0, 3.0]])  # class 1 has the longer text vector
    image = np.array([[2.0, 1.5]])             # closer in angle to class 0
    assert similarity.similarity_scores(image, text, "cosine").argmax() == 0
    assert similarity.similarity_scores(image, text, "dot").argmax() == 1
    # scaling the image never changes either ranking
    for metric in ("cosine", "dot"):
        assert similarity.similarity_scores(10 * image, text, metric).argmax() == \
            similarity.similarity_scores(image, text, metric).argmax()
    np.testing.assert_allclose(similarity.similarity_scores(image, text, "cosine"),
                               [[2 / 2.5, 1.5 / 2.5]])


def test_probe_learns_a_separable_problem_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    train_y, test_y = rng.integers(0, 4, 400), rng.integers(0, 4, 100)
    train_x = (centres[train_y] + rng.normal(size=(400, 16))).astype(np.float32)
    test_x = (centres[test_y] + rng.normal(size=(100, 16))).astype(np.float32)
    run = lambda: list(linear_probe.train_linear_probe(train_x, train_y, test_x, 4, epochs=5, lr=0.05,
                                                   batch_size=32, weight_decay=0.0, seed=0))
    history = run()
    assert [epoch for epoch, _, _ in history] == [1, 2, 3, 4, 5]
    assert history[-1][1] < history[0][1]  # the loss falls
    assert (history[-1][2].argmax(1) == test_y).mean() == 1.0
    np.testing.assert_array_equal(history[-1][2], run()[-1][2])
