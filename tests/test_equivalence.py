"""Our zero-shot classifier agrees with transformers' own zero-shot pipeline and CLIPModel.forward."""

import numpy as np
import pytest
import torch
from transformers import pipeline

from clip_study.data import images, sources
from clip_study.evaluation.prompts import class_prompts
from clip_study.evaluation.similarity import l2_normalize, similarity_scores
from clip_study.models import encoding, loading


@pytest.fixture(scope="module")
def test_images(shape_folder):
    examples = sources.scan_folder(shape_folder).examples[::4][:20]  # one image of each of 20 classes
    names = [e.class_id.replace("_", " ") for e in examples]
    return [e.path for e in examples], names


def encode(tiny_clip_dir, paths, template, names):
    name = str(tiny_clip_dir)
    model = loading.load_model(name, torch.device("cpu"))
    image_features = encoding.encode_images(model, loading.load_image_processor(name), paths, batch_size=7)
    text_features = encoding.encode_texts(model, loading.load_tokenizer(name), class_prompts(template, names))
    return model, image_features, text_features


@pytest.mark.parametrize("template", ["a photo of a {}", "{}"])
def test_predictions_equal_the_transformers_pipeline(tiny_clip_dir, test_images, template):
    paths, names = test_images
    _, image_features, text_features = encode(tiny_clip_dir, paths, template, names)
    ours = similarity_scores(image_features, text_features, "cosine")

    classifier = pipeline("zero-shot-image-classification", model=str(tiny_clip_dir), device="cpu")
    theirs = classifier([str(p) for p in paths], candidate_labels=names, hypothesis_template=template)
    assert [names[i] for i in ours.argmax(1)] == [result[0]["label"] for result in theirs]
    # and the probabilities: the pipeline softmaxes logit_scale * cosine over the labels
    scale = loading.load_model(str(tiny_clip_dir), torch.device("cpu")).logit_scale.exp().item()
    expected = torch.softmax(torch.from_numpy(ours * scale), dim=1).numpy()
    for row, result in zip(expected, theirs):
        got = {r["label"]: r["score"] for r in result}
        np.testing.assert_allclose([got[n] for n in names], row, atol=1e-5)


def test_cosine_scores_equal_clip_forward(tiny_clip_dir, test_images):
    paths, names = test_images
    template = "a photo of a {}"
    model, image_features, text_features = encode(tiny_clip_dir, paths, template, names)
    processor, tokenizer = loading.load_image_processor(str(tiny_clip_dir)), loading.load_tokenizer(str(tiny_clip_dir))
    with torch.inference_mode():
        out = model(**tokenizer(class_prompts(template, names), padding=True, return_tensors="pt"),
                    pixel_values=processor(images=[images.open_rgb(p) for p in paths], return_tensors="pt")["pixel_values"])
        expected = (out.logits_per_image / model.logit_scale.exp()).numpy()
    np.testing.assert_allclose(similarity_scores(image_features, text_features, "cosine"), expected,
                               atol=1e-5)
    # our unnormalised embeddings point the way forward()'s normalised ones do
    np.testing.assert_allclose(l2_normalize(image_features), out.image_embeds.numpy(), atol=1e-5)
