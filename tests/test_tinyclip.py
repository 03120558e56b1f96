"""The small-CLIP and small-SigLIP builders: the tokenizer is the same in every process and never yields the
unknown token; a saved SigLIP loads like a hub checkpoint and runs through transformers' pipeline; a saved
checkpoint's config is true to its tokenizer, saved without transformers' token-id warnings, byte for byte
the same when saved again."""

import json
import logging
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, SiglipModel, SiglipTextConfig, pipeline

from clip_study.demo import shapes, tinyclip
from clip_study.errors import UserError
from clip_study.models import loading
from tests.conftest import shape_prompts

VOCAB_OF_A_FRESH_PROCESS = """
import json
from clip_study.demo import tinyclip
from tests.conftest import shape_prompts
print(json.dumps(tinyclip.train_tokenizer(shape_prompts(), 300).get_vocab(), sort_keys=True))
"""


@pytest.mark.slow  # several fresh Python processes
def test_tokenizer_ids_are_the_same_in_every_process():
    # the BPE trainer numbers tokens in hash-map order, which changes from process to process
    vocabularies = [subprocess.run([sys.executable, "-c", VOCAB_OF_A_FRESH_PROCESS], capture_output=True,
                                   text=True, check=True).stdout for _ in range(2)]
    assert vocabularies[0] == vocabularies[1]
    assert json.loads(vocabularies[0]) == tinyclip.train_tokenizer(shape_prompts(), 300).get_vocab()


def test_unseen_text_never_maps_to_the_end_of_text_token():
    tokenizer = tinyclip.train_tokenizer(shape_prompts(), 300)
    ids = tokenizer("Zebra! ünïcödé 42 {x}")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in ids[1:-1]  # pooling reads the first end-of-text position


def test_saved_siglip_reloads_bit_identically(tiny_siglip_dir):
    model, _, _ = tinyclip.random_small_siglip(shape_prompts(), seed=0, text_hidden=16, max_text_length=64)
    loaded = SiglipModel.from_pretrained(tiny_siglip_dir)
    assert loaded.config.model_type == "siglip" and loaded.config.text_config.max_position_embeddings == 64
    for (name, weight), other in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(weight, other), name
    # the SigLIP paper's bias and CLIP's temperature, not transformers' 0 and 0
    assert loaded.logit_scale.item() == pytest.approx(math.log(1 / 0.07)) and loaded.logit_bias.item() == -10
    assert type(AutoImageProcessor.from_pretrained(tiny_siglip_dir)) is tinyclip.SiglipImageProcessor
    assert AutoTokenizer.from_pretrained(tiny_siglip_dir).get_vocab() == tinyclip.train_tokenizer(
        shape_prompts(), 300).get_vocab()


def test_text_is_projected_to_the_image_width(tiny_siglip_dir):
    model = SiglipModel.from_pretrained(tiny_siglip_dir)
    tokens = AutoTokenizer.from_pretrained(tiny_siglip_dir)(["a red circle"], padding="max_length", max_length=64,
                                                            return_tensors="pt")
    with torch.no_grad():
        text = model.get_text_features(**tokens)
        image = model.get_image_features(pixel_values=torch.zeros(1, 3, 32, 32))
    text, image = (getattr(x, "pooler_output", x) for x in (text, image))  # 5.x returns an output object
    assert text.shape == image.shape == (1, 32)


def test_the_zero_shot_pipeline_runs_on_a_saved_siglip_offline(tmp_path):
    # the pipeline pads SigLIP prompts to 64 tokens: the model needs at least 64 positions
    tinyclip.save_checkpoint(tmp_path, *tinyclip.random_small_siglip(shape_prompts(), seed=0, image_size=16))
    classify = pipeline("zero-shot-image-classification", model=str(tmp_path))
    image = shapes.render("red", "circle", np.random.default_rng(0), 16)
    labels = ["red circle", "blue star", "green square"]
    result = classify(image, candidate_labels=labels, hypothesis_template="a photo of a {}")
    assert sorted(entry["label"] for entry in result) == sorted(labels)
    # sigmoid scores of the model's own logits (prompts padded to 64, as the pipeline does)
    model = SiglipModel.from_pretrained(tmp_path)
    tokens = AutoTokenizer.from_pretrained(tmp_path)([f"a photo of a {label}" for label in labels],
                                                     padding="max_length", max_length=64, return_tensors="pt")
    pixels = AutoImageProcessor.from_pretrained(tmp_path)(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        scores = torch.sigmoid(model(**tokens, pixel_values=pixels).logits_per_image[0]).tolist()
    assert {entry["label"]: entry["score"] for entry in result} == pytest.approx(dict(zip(labels, scores)))


def test_siglip_image_processor_resizes_to_a_square_with_mean_and_std_one_half():
    processor = tinyclip.siglip_image_processor(16)
    pixels = processor(images=[Image.new("RGB", (40, 20), (255, 0, 0))], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 16, 16)
    assert torch.allclose(pixels[0, :, 8, 8], torch.tensor([1.0, -1.0, -1.0]))


def test_the_demo_builds_every_model_family_and_an_unknown_one_is_a_one_line_error():
    from clip_study.models.families import FAMILIES

    assert set(tinyclip.SMALL_MODELS) == set(FAMILIES) == {"hf_clip", "hf_siglip"}
    with pytest.raises(UserError, match="unknown model family 'open_clip': the demo pretrains one of hf_clip, "
                                        "hf_siglip"):
        tinyclip.small_model("open_clip")


SIZES = {"vision_hidden": 32, "vision_layers": 1, "patch_size": 8, "text_hidden": 16, "text_layers": 1, "heads": 2,
         "projection_dim": 16, "max_text_length": 32}


class Messages(logging.Handler):
    """Every message logged: transformers logs to its own handler, not to the root logger pytest's caplog reads."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def logged(action) -> list[str]:
    """What transformers logs while ``action()`` runs, warnings shown once per process included."""
    messages, transformers_logger = Messages(), logging.getLogger("transformers")
    transformers_logger.addHandler(messages)
    logging.Logger.warning_once.cache_clear()  # forget those shown before, as by an earlier save
    try:
        action()
    finally:
        transformers_logger.removeHandler(messages)
    return messages.lines


@pytest.mark.skipif(loading.transformers_version() < (5, 0), reason="transformers 4.x does not check token ids")
def test_only_token_id_warnings_about_another_vocabulary_than_the_models_are_dropped():
    def build_two_configs():
        with tinyclip._without_warnings_about_default_vocabularies(10):
            SiglipTextConfig(vocab_size=10, bos_token_id=0, eos_token_id=12, pad_token_id=1)  # eos outside its own
            SiglipTextConfig()  # transformers' defaults: bos and eos outside its 32,000
    assert [line for line in logged(build_two_configs) if "token_id" in line] == [
        "Model config: eos_token_id must be `None` or an integer within the vocabulary (between 0 and 9), got 12. "
        "This may result in unexpected behavior."]


@pytest.mark.parametrize("family", ["hf_clip", "hf_siglip"])
def test_a_saved_demo_model_is_true_to_its_tokenizer_warns_nothing_and_saves_byte_identically(tmp_path, family):
    tokenizer = tinyclip.train_tokenizer(shape_prompts(), 300)
    small = tinyclip.small_model(family)

    def build_and_save_twice():
        torch.manual_seed(0)
        model = small.model(tokenizer, image_size=16, **SIZES)
        for copy in ("first", "second"):
            tinyclip.save_checkpoint(tmp_path / copy, model, tokenizer, small.image_processor(16))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        said = logged(build_and_save_twice) + [str(warning.message) for warning in caught]
    assert [line for line in said if "token_id" in line] == [], said

    # as a loader reads it (transformers 4.x leaves out of config.json an id equal to the class default)
    text_config = AutoConfig.from_pretrained(tmp_path / "first").text_config
    ids = {key: getattr(text_config, key) for key in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")}
    assert ids == {"vocab_size": len(tokenizer), "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    assert tokenizer.convert_ids_to_tokens([0, 1]) == [tinyclip.BOS, tinyclip.EOS]

    for part in loading.CHECKPOINT_FILES:  # config, weights, tokenizer (4.x: vocab.json and merges.txt), processor
        loading.check_checkpoint(tmp_path / "first", part)
    files = sorted(path.name for path in (tmp_path / "first").iterdir())
    assert sorted(path.name for path in (tmp_path / "second").iterdir()) == files
    for name in files:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_a_config_not_built_from_the_tokenizer_is_refused_before_anything_is_written(tmp_path):
    model, tokenizer, processor = tinyclip.random_small_clip(shape_prompts(), seed=0)
    other = tinyclip.train_tokenizer(shape_prompts() + [f"word{i} thing{i * 7}" for i in range(200)], 400)
    with pytest.raises(UserError) as error:
        tinyclip.save_checkpoint(tmp_path / "model", model, other, processor)
    assert str(error.value) == (f"the model's text config has vocab_size {len(tokenizer)} where its tokenizer has "
                                f"vocab_size {len(other)}: build the config from the tokenizer it is saved with "
                                "(small_clip_config or small_siglip_config)")
    assert not (tmp_path / "model").exists()
