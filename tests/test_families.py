"""Each model family's zero-shot classifier agrees with transformers' own zero-shot pipeline and with the
model's forward logits: predictions, logits and probabilities (CLIP's softmax, SigLIP's sigmoid)."""

import numpy as np
import pytest
import torch
from transformers import pipeline

from clip_study.data import images, sources
from clip_study.evaluation.prompts import class_prompts
from clip_study.evaluation import zeroshot as zeroshot_lib
from clip_study.evaluation.similarity import l2_normalize, similarity_scores
from clip_study.models import encoding, families, loading

FAMILY_CHECKPOINTS = {"hf_clip": "tiny_clip_dir", "hf_siglip": "tiny_siglip_dir"}


@pytest.fixture(scope="module")
def test_images(shape_folder):
    examples = sources.scan_folder(shape_folder).examples[::4][:20]  # one image of each of 20 classes
    names = [e.class_id.replace("_", " ") for e in examples]
    return [e.path for e in examples], names


@pytest.fixture(params=list(FAMILY_CHECKPOINTS))
def checkpoint(request) -> tuple[str, str]:
    """(family, checkpoint directory) of a tiny random model of each family."""
    return request.param, str(request.getfixturevalue(FAMILY_CHECKPOINTS[request.param]))


def encode(name, paths, template, names):
    model = loading.load_model(name, torch.device("cpu"))
    image_features = encoding.encode_images(model, loading.load_image_processor(name), paths, batch_size=7)
    text_features = encoding.encode_texts(model, loading.load_tokenizer(name), class_prompts(template, names))
    return model, image_features, text_features


@pytest.mark.parametrize("template", ["a photo of a {}", "{}"])
def test_predictions_and_probabilities_equal_the_transformers_pipeline(checkpoint, test_images, template):
    family, name = checkpoint
    paths, names = test_images
    model, image_features, text_features = encode(name, paths, template, names)
    assert families.family_of(model).name == family
    ours = similarity_scores(image_features, text_features, "cosine")

    classifier = pipeline("zero-shot-image-classification", model=name, device="cpu")
    theirs = classifier([str(p) for p in paths], candidate_labels=names, hypothesis_template=template)
    assert [names[i] for i in ours.argmax(1)] == [result[0]["label"] for result in theirs]
    # the probabilities: CLIP's softmax of logit_scale x cosine over the labels, SigLIP's sigmoid of each
    # logit_scale x cosine + logit_bias
    expected = zeroshot_lib.zero_shot_head(model).probabilities_of(ours)
    for row, result in zip(expected, theirs):
        got = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([got[n] for n in names], row, atol=1e-5)
    if family == "hf_siglip":  # independent sigmoids: they need not sum to 1
        assert not np.allclose(expected.sum(axis=1), 1)


def test_logits_equal_the_models_forward(checkpoint, test_images):
    family, name = checkpoint
    paths, names = test_images
    template = "a photo of a {}"
    model, image_features, text_features = encode(name, paths, template, names)
    processor, tokenizer = loading.load_image_processor(name), loading.load_tokenizer(name)
    padding = "max_length" if family == "hf_siglip" else True  # as each was trained
    with torch.inference_mode():
        out = model(**tokenizer(class_prompts(template, names), padding=padding, return_tensors="pt"),
                    pixel_values=processor(images=[images.open_rgb(p) for p in paths],
                                           return_tensors="pt")["pixel_values"])
    head = zeroshot_lib.zero_shot_head(model)
    np.testing.assert_allclose(head.logits(similarity_scores(image_features, text_features, "cosine")),
                               out.logits_per_image.numpy(), atol=1e-4 * head.scale)
    # our unnormalised embeddings point the way forward()'s normalised ones do
    np.testing.assert_allclose(l2_normalize(image_features), out.image_embeds.numpy(), atol=1e-5)


def test_features_do_not_depend_on_the_batch_size_on_a_cpu(checkpoint, test_images):
    _, name = checkpoint
    paths, _ = test_images
    model, processor = loading.load_model(name, torch.device("cpu")), loading.load_image_processor(name)
    one = encoding.encode_images(model, processor, paths, batch_size=1)
    assert np.array_equal(one, encoding.encode_images(model, processor, paths, batch_size=7))
    assert one.shape == (len(paths), families.embedding_dim(model))


def test_the_family_is_read_from_the_checkpoint_and_a_wrong_one_is_one_line(tiny_clip_dir, tiny_siglip_dir):
    from clip_study.errors import UserError

    assert type(loading.load_model(str(tiny_siglip_dir), family="auto")).__name__ == "SiglipModel"
    assert type(loading.load_model(str(tiny_clip_dir), family="hf_clip")).__name__ == "CLIPModel"
    with pytest.raises(UserError, match="is a 'siglip' checkpoint, which family hf_clip does not load: set the "
                                        "family to hf_siglip"):
        loading.load_model(str(tiny_siglip_dir), family="hf_clip")
    with pytest.raises(UserError, match="NaFlex"):
        families.resolve_family("auto", "siglip2", "google/siglip2-base-patch16-naflex")
