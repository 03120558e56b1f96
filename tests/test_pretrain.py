"""Tests for the demo-only stages generate and pretrain, at tiny sizes (a few seconds in all)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, SiglipModel

from clip_study.demo import pretraining, shapes, tinyclip
from clip_study.errors import UserError
from stages import generate, pretrain

TINY_SIZES = {"vision_hidden": 32, "vision_layers": 1, "patch_size": 8, "text_hidden": 32, "text_layers": 1,
              "heads": 2, "projection_dim": 16, "max_text_length": 32}
TINY_PARAMS = {
    "generate": {"seed": 0, "pretrain_images": 96, "eval_per_class": 2, "image_size": 16, "held_out": 7,
                 "shape_only_per_class": 3, "shift_per_class": 2, "captioned_per_class": 1, "captions_per_image": 2},
    "pretrain": {"seed": 0, "steps": 4, "batch_size": 16, "lr": 0.002, "warmup_steps": 2, "weight_decay": 0.1,
                 "vocab_size": 300, **TINY_SIZES},
}


def run_stage(main, *argv: str) -> None:
    main(list(argv))


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params))
    return path


def tiny_set(n: int = 48, size: int = 16):
    images, captions, _ = shapes.pretraining_set(n, seed=1, held_out=shapes.held_out_pairs(0), size=size)
    tokenizer = tinyclip.train_tokenizer(captions, 300)
    input_ids, attention_mask = pretraining.tokenize(tokenizer, captions, max_length=32)
    pixels = pretraining.preprocess_pixels(images, tinyclip.image_processor(size))
    return tokenizer, pixels, input_ids, attention_mask


def tiny_model(tokenizer, size: int = 16, seed: int = 0) -> CLIPModel:
    torch.manual_seed(seed)
    return CLIPModel(tinyclip.small_clip_config(tokenizer, image_size=size, **TINY_SIZES))


def contrastive_loss(model: CLIPModel, pixels, input_ids, attention_mask) -> float:
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixels,
                     return_loss=True).loss.item()


@pytest.mark.parametrize("family", ["hf_clip", "hf_siglip"])
@pytest.mark.parametrize("size", [16, 32])
def test_preprocess_pixels_matches_the_image_processor(size, family):
    rng = np.random.default_rng(0)
    images = [shapes.render(colour, shape, rng, size) for colour, shape in shapes.all_classes()[::7]]
    processor = tinyclip.small_model(family).image_processor(size)
    expected = processor(images=images, return_tensors="pt")["pixel_values"]
    pixels = pretraining.preprocess_pixels(np.stack([np.asarray(image) for image in images]), processor)
    assert pixels.shape == expected.shape and pixels.dtype == torch.float32
    assert torch.allclose(pixels, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["hf_clip", "hf_siglip"])
def test_preprocess_pixels_refuses_images_that_need_resizing(family):
    with pytest.raises(ValueError, match="resizing"):
        pretraining.preprocess_pixels(np.zeros((2, 16, 16, 3), dtype=np.uint8),
                                      tinyclip.small_model(family).image_processor(32))


def test_lr_schedule_warms_up_linearly_then_decays_to_zero():
    warmup, total = 10, 100
    factors = [pretraining.lr_schedule(step, warmup, total) for step in range(total)]
    assert factors[:warmup] == pytest.approx([(step + 1) / warmup for step in range(warmup)])
    assert factors[warmup - 1] == pytest.approx(1.0) and factors[warmup] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:]))
    assert 0 < factors[-1] < 0.001
    assert pretraining.lr_schedule(0, 0, 5) == pytest.approx(1.0)  # no warm-up


def test_batch_order_covers_each_pass_without_repeats():
    order = pretraining.batch_order(10, steps=7, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert order.shape == (7, 3)
    first_pass = order[:3].flatten()  # 3 full batches per pass of 10 examples
    assert len(set(first_pass.tolist())) == 9
    with pytest.raises(UserError, match="a batch of 11 is larger than the 10 pretraining images"):
        pretraining.batch_order(10, steps=1, batch_size=11, generator=torch.Generator())


def test_tokenize_pads_to_the_longest_caption_and_checks_the_length():
    tokenizer = tinyclip.train_tokenizer(["a red circle", "a photo of a blue star on a dark background"], 300)
    captions = ["a red circle", "a red circle on a dark background"]
    input_ids, attention_mask = pretraining.tokenize(tokenizer, captions, 32)
    assert input_ids.shape == attention_mask.shape and input_ids.shape[0] == 2
    assert attention_mask[1].all() and not attention_mask[0].all()
    assert (input_ids[:, 0] == tokenizer.bos_token_id).all()
    expected = tokenizer(["a red circle"])["input_ids"][0]
    assert input_ids[0, :len(expected)].tolist() == expected
    with pytest.raises(UserError, match="3 text positions are fewer than the longest caption"):
        pretraining.tokenize(tokenizer, ["a red circle on a dark background"], 3)


def test_tokenize_pads_to_max_length_for_last_position_pooling():
    tokenizer = tinyclip.train_tokenizer(["a red circle", "a photo of a blue star on a dark background"], 300)
    input_ids, attention_mask = pretraining.tokenize(tokenizer, ["a red circle", "a blue star"], 20,
                                                     pad_to_max_length=True)
    assert input_ids.shape == attention_mask.shape == (2, 20)
    assert (input_ids[:, -1] == tokenizer.pad_token_id).all() and not attention_mask[:, -1].any()
    with pytest.raises(UserError, match="3 text positions are fewer than the longest caption"):
        pretraining.tokenize(tokenizer, ["a red circle"], 3, pad_to_max_length=True)


def text_embeddings(model, **texts) -> torch.Tensor:
    with torch.no_grad():
        output = model.get_text_features(**texts)
    return getattr(output, "pooler_output", output)  # transformers 5.x: an output object, 4.x: the tensor


def test_siglip_captions_in_a_few_positions_embed_as_padded_to_max_length():
    captions = ["a red circle", "a photo of a blue star on a dark background", "this star is blue"]
    tokenizer = tinyclip.train_tokenizer(captions, 300)
    longest = max(len(ids) for ids in tokenizer(captions)["input_ids"])
    input_ids, attention_mask, position_ids = pretraining.tokenize_for_last_position(tokenizer, captions, 32)
    assert input_ids.shape == attention_mask.shape == position_ids.shape == (3, longest + 1)
    assert (input_ids[:, -1] == tokenizer.pad_token_id).all() and not attention_mask[:, -1].any()
    assert position_ids[0].tolist() == [*range(longest), 31]
    torch.manual_seed(0)
    model = tinyclip.small_model("hf_siglip").model(tokenizer, image_size=16, **TINY_SIZES).eval()
    padded = dict(zip(("input_ids", "attention_mask"),
                      pretraining.tokenize(tokenizer, captions, 32, pad_to_max_length=True)))
    expected = text_embeddings(model, **padded)  # as evaluation encodes them
    short = text_embeddings(model, input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    torch.testing.assert_close(short, expected, rtol=1e-5, atol=1e-5)
    # the position id is what makes them equal: numbered from 0, the last token is another input
    assert not torch.allclose(text_embeddings(model, input_ids=input_ids, attention_mask=attention_mask), expected,
                              atol=1e-3)
    # the longest caption filling every position leaves nothing to shorten: the padding to max_length itself
    full = pretraining.tokenize_for_last_position(tokenizer, captions, longest)
    assert [t.shape for t in full] == [(3, longest)] * 3 and full[2][0].tolist() == list(range(longest))


def test_a_few_steps_reduce_the_loss_and_are_deterministic():
    tokenizer, pixels, input_ids, attention_mask = tiny_set()
    model = tiny_model(tokenizer)
    before = contrastive_loss(model, pixels, input_ids, attention_mask)
    log = pretraining.pretrain(model, pixels, input_ids, attention_mask, steps=30, batch_size=16, lr=0.003,
                            warmup_steps=5, weight_decay=0.1, seed=0, log_every=10)
    after = contrastive_loss(model, pixels, input_ids, attention_mask)
    assert after < before - 0.3
    assert [entry["step"] for entry in log] == [10, 20, 30] and not model.training

    again = tiny_model(tokenizer)
    pretraining.pretrain(again, pixels, input_ids, attention_mask, steps=30, batch_size=16, lr=0.003,
                      warmup_steps=5, weight_decay=0.1, seed=0, log_every=10)
    for (name, weight), other in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(weight, other), name


def test_generate_and_pretrain_stages_end_to_end(tmp_path):
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    npz, images, shape_only, held_out, out = (tmp_path / "pretrain.npz", tmp_path / "shapes",
                                              tmp_path / "shape_only", tmp_path / "held_out.json", tmp_path / "model")
    run_stage(generate.main, "--params", str(params), "--pretrain", str(npz), "--images", str(images),
              "--shape-only", str(shape_only), "--held-out", str(held_out), "--shift-sets", str(tmp_path / "shifts"),
              "--captions", str(tmp_path / "captions"))

    with np.load(npz, allow_pickle=False) as data:
        assert data["images"].shape == (96, 16, 16, 3) and data["images"].dtype == np.uint8
        assert data["captions"].dtype.kind == "U" and data["captions"].shape == (96,)
        assert data["labels"].dtype == np.int64
        seen = {shapes.class_name(*shapes.all_classes()[label]) for label in data["labels"].tolist()}
    record = json.loads(held_out.read_text())
    assert len(record["classes"]) == 7 and not set(record["classes"]) & seen
    assert record["folders"] == [name.replace(" ", "_") for name in record["classes"]]
    folders = sorted(path.name for path in images.iterdir())
    assert len(folders) == 49 and set(record["folders"]) <= set(folders)
    assert len(list((images / record["folders"][0]).glob("*.png"))) == 2
    # the second dataset: the 7 shapes alone, each in random colours
    assert sorted(path.name for path in shape_only.iterdir()) == sorted(shapes.SHAPES)
    for shape in shapes.SHAPES:
        files = sorted((shape_only / shape).iterdir())
        assert [path.name for path in files] == ["0000.png", "0001.png", "0002.png"]
        assert all(Image.open(path).size == (16, 16) for path in files)
    # the shift sets: the evaluation set's folder names, 2 images a class (the small one: 21 classes)
    assert sorted(path.name for path in (tmp_path / "shifts").iterdir()) == sorted(shapes.SHIFT_SETS)
    for shift in shapes.SHIFT_SETS:
        shifted = sorted((tmp_path / "shifts" / shift).iterdir())
        expected = sorted(shapes.folder_name(*pair) for pair in shapes.shift_classes(shift))
        assert [path.name for path in shifted] == expected
        assert all(len(list(folder.glob("*.png"))) == 2 for folder in shifted)
    # the caption set: one image a class, two captions each, listed in test.jsonl
    lines = (tmp_path / "captions" / "test.jsonl").read_text().splitlines()
    assert len(lines) == 49 and len(list((tmp_path / "captions" / "images").rglob("*.png"))) == 49
    assert all(len(json.loads(line)["captions"]) == 2 for line in lines)

    run_stage(pretrain.main, "--params", str(params), "--pretrain", str(npz), "--out", str(out), "--family", "hf_clip")
    model = CLIPModel.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    processor = AutoImageProcessor.from_pretrained(out)
    assert model.config.vision_config.image_size == 16 and model.config.projection_dim == 16
    assert len(json.loads((out / "training_log.json").read_text())) == 1  # 4 steps, one entry
    pixels = processor(images=[Image.open(next((images / folders[0]).glob("*.png")))], return_tensors="pt")
    tokens = tokenizer(["a photo of a " + record["classes"][0]], return_tensors="pt")
    with torch.no_grad():
        logits = model(**tokens, pixel_values=pixels["pixel_values"]).logits_per_image
    assert logits.shape == (1, 1) and torch.isfinite(logits).all()


@pytest.mark.parametrize("key, value, match", [
    ("held_out", 8, "generate.held_out"),
    ("pretrain_images", 0, "generate.pretrain_images"),
    ("eval_per_class", 1.5, "generate.eval_per_class"),
    ("shape_only_per_class", 1, "generate.shape_only_per_class"),
    ("shift_per_class", 0, "generate.shift_per_class"),
    ("captioned_per_class", 0, "generate.captioned_per_class"),
    ("captions_per_image", 1.5, "generate.captions_per_image"),
])
def test_generate_rejects_bad_params(tmp_path, key, value, match):
    params = write_params(tmp_path / "params.yaml", {"generate": {**TINY_PARAMS["generate"], key: value}})
    with pytest.raises(UserError, match=match):
        run_stage(generate.main, "--params", str(params), "--pretrain", str(tmp_path / "p.npz"),
                  "--images", str(tmp_path / "shapes"), "--shape-only", str(tmp_path / "shape_only"),
                  "--held-out", str(tmp_path / "held_out.json"), "--shift-sets", str(tmp_path / "shifts"),
                  "--captions", str(tmp_path / "captions"))
    assert not (tmp_path / "p.npz").exists() and not (tmp_path / "shape_only").exists()


@pytest.mark.parametrize("key, value, match", [
    ("steps", 0, "pretrain.steps"),
    ("lr", -1, "pretrain.lr"),
    ("vision_hidden", 33, "pretrain.vision_hidden"),
    ("patch_size", 5, "pretrain.patch_size"),
])
def test_pretrain_rejects_bad_params(tmp_path, key, value, match):
    images, captions, labels = shapes.pretraining_set(8, 0, shapes.held_out_pairs(0), size=16)
    shapes.write_pretraining_set(tmp_path / "p.npz", images, captions, labels)
    params = write_params(tmp_path / "params.yaml", {"pretrain": {**TINY_PARAMS["pretrain"], key: value}})
    with pytest.raises(UserError, match=match):
        run_stage(pretrain.main, "--params", str(params), "--pretrain", str(tmp_path / "p.npz"),
                  "--out", str(tmp_path / "model"), "--family", "hf_clip")


def sigmoid_loss(model: SiglipModel, pixels, input_ids, attention_mask) -> float:
    """transformers' SigLIP loss over 16-example batches (the training batch size: it sums over the batch)."""
    with torch.no_grad():
        return float(np.mean([model(input_ids=input_ids[i:i + 16], attention_mask=attention_mask[i:i + 16],
                                    pixel_values=pixels[i:i + 16], return_loss=True).loss.item()
                              for i in range(0, len(pixels), 16)]))


def test_siglip_steps_reduce_the_sigmoid_loss_and_the_checkpoint_reloads_bit_identically(tmp_path):
    images, captions, _ = shapes.pretraining_set(48, seed=1, held_out=shapes.held_out_pairs(0), size=16)
    tokenizer = tinyclip.train_tokenizer(captions, 300)
    input_ids, attention_mask = pretraining.tokenize(tokenizer, captions, max_length=32, pad_to_max_length=True)
    assert input_ids.shape == (48, 32)
    processor = tinyclip.siglip_image_processor(16)
    pixels = pretraining.preprocess_pixels(images, processor)
    torch.manual_seed(0)
    model = tinyclip.small_model("hf_siglip").model(tokenizer, image_size=16, **TINY_SIZES)
    before = sigmoid_loss(model, pixels, input_ids, attention_mask)
    log = pretraining.pretrain(model, pixels, input_ids, attention_mask, steps=30, batch_size=16, lr=0.003,
                               warmup_steps=5, weight_decay=0.1, seed=0, log_every=10)
    after = sigmoid_loss(model, pixels, input_ids, attention_mask)
    assert all(np.isfinite(entry["loss"]) for entry in log) and after < before - 0.5
    assert model.logit_scale.item() <= pretraining.MAX_LOGIT_SCALE

    tinyclip.save_checkpoint(tmp_path, model, tokenizer, processor)
    loaded = SiglipModel.from_pretrained(tmp_path)
    for (name, weight), other in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(weight, other), name


def test_pretrain_stage_trains_a_siglip_with_family_hf_siglip(tmp_path):
    images, captions, labels = shapes.pretraining_set(32, 0, shapes.held_out_pairs(0), size=16)
    shapes.write_pretraining_set(tmp_path / "p.npz", images, captions, labels)
    params = write_params(tmp_path / "params.yaml", {"pretrain": {**TINY_PARAMS["pretrain"], "text_hidden": 16}})
    run_stage(pretrain.main, "--params", str(params), "--pretrain", str(tmp_path / "p.npz"),
              "--out", str(tmp_path / "model"), "--family", "hf_siglip")
    model = SiglipModel.from_pretrained(tmp_path / "model")
    assert model.config.text_config.max_position_embeddings == 32 and model.config.vision_config.image_size == 16
    assert model.text_model.head.out_features == 32  # text width 16 projected to the image width
    assert np.isfinite(json.loads((tmp_path / "model" / "training_log.json").read_text())[0]["loss"])
    with pytest.raises(UserError, match="unknown model family 'siglip'"):
        run_stage(pretrain.main, "--params", str(params), "--pretrain", str(tmp_path / "p.npz"),
                  "--out", str(tmp_path / "other"), "--family", "siglip")
