"""Checkpoint directories as transformers 4.x and 5.x save them: the image processor's settings in
preprocessor_config.json (4.x) or nested in processor_config.json (5.x's processors) give the same features
through the extract stage's path, and a directory with neither, or with either damaged, is one line naming it."""

import json
from pathlib import Path

import numpy as np
import pytest
import transformers
from transformers import CLIPProcessor, SiglipProcessor

from clip_study.data.features import load_features
from clip_study.data.sources import scan_folder
from clip_study.demo import tinyclip
from clip_study.errors import BadFileError, UserError
from clip_study.models import loading
from clip_study.models.extraction import extract_features
from clip_study.models.families import embedding_dim
from tests.conftest import shape_prompts

# family -> (a random small model with its tokenizer and image processor, the processor class that saves them)
SMALL = {"hf_clip": (tinyclip.random_small_clip, CLIPProcessor),
         "hf_siglip": (tinyclip.random_small_siglip, SiglipProcessor)}
NO_IMAGE_PROCESSOR = ("has no image processor (preprocessor_config.json or processor_config.json holding "
                      "'image_processor'); a checkpoint directory needs what save_pretrained writes for the model, "
                      "tokenizer and image processor")


def save_with_the_processor(out: Path, model, tokenizer, image_processor, processor_class) -> None:
    """The checkpoint as ``model.save_pretrained`` and the processor's ``save_pretrained`` write it. transformers
    5.x nests the image processor's settings in processor_config.json and writes no preprocessor_config.json;
    4.x writes preprocessor_config.json, which is nested here as 5.x does, so that both versions test that layout."""
    model.save_pretrained(out)
    processor_class(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    legacy, nested = out / "preprocessor_config.json", out / "processor_config.json"
    if legacy.exists():
        assert loading.transformers_version() < (5, 0), "transformers 5.x wrote preprocessor_config.json"
        processor = json.loads(nested.read_text()) if nested.exists() else {}
        nested.write_text(json.dumps({**processor, "image_processor": json.loads(legacy.read_text()),
                                      "processor_class": processor_class.__name__}))
        legacy.unlink()


def extracted(checkpoint: Path, paths: list[Path], out: Path) -> np.ndarray:
    """The features the extract stage writes for ``paths``: the model and image processor loaded as it loads
    them, encoded by its extraction."""
    model = loading.load_model(str(checkpoint))
    splits = {"test": (paths, np.zeros(len(paths), dtype=np.int64))}
    extract_features(model, loading.load_image_processor(str(checkpoint)), splits, out, "fp32", batch_size=4,
                     workers=0, shard_size=64, log=lambda line: None)
    return load_features(out / "test.npz")[0]


@pytest.mark.parametrize("family", list(SMALL))
def test_both_layouts_of_the_image_processor_give_the_same_features(tmp_path, shape_folder, family):
    build, processor_class = SMALL[family]
    model, tokenizer, image_processor = build(shape_prompts(), seed=0)
    tinyclip.save_checkpoint(tmp_path / "4.x", model, tokenizer, image_processor)
    save_with_the_processor(tmp_path / "5.x", model, tokenizer, image_processor, processor_class)
    assert (tmp_path / "4.x" / "preprocessor_config.json").is_file()
    assert not (tmp_path / "4.x" / "processor_config.json").exists()
    assert not (tmp_path / "5.x" / "preprocessor_config.json").exists()
    nested = json.loads((tmp_path / "5.x" / "processor_config.json").read_text())["image_processor"]
    assert nested["size"] == image_processor.to_dict()["size"]

    paths = [example.path for example in scan_folder(shape_folder).examples[::28]]  # 7 classes, one image each
    features = {layout: extracted(tmp_path / layout, paths, tmp_path / f"features-{layout}")
                for layout in ("4.x", "5.x")}
    assert features["4.x"].shape == (7, embedding_dim(model)) and features["4.x"].dtype == np.float32
    assert not np.allclose(features["4.x"][0], features["4.x"][1])  # the images are told apart
    assert np.array_equal(features["4.x"], features["5.x"])


def image_processor_files(directory: Path, layout: str) -> Path:
    """Only the image processor's files, in ``layout`` (the check reads no other file for it)."""
    tinyclip.image_processor(32).save_pretrained(directory)
    if layout == "5.x":
        settings = (directory / "preprocessor_config.json").read_text()
        (directory / "processor_config.json").write_text(f'{{"image_processor": {settings}}}')
        (directory / "preprocessor_config.json").unlink()
    return directory


@pytest.mark.parametrize("processor_config", [None, '{"processor_class": "CLIPProcessor"}'],
                         ids=["no-processor-config", "processor-config-without-image-processor"])
def test_a_checkpoint_without_image_processor_settings_is_one_line_naming_both_files(tmp_path, processor_config):
    if processor_config is not None:  # what a 4.x processor with settings of its own writes there
        (tmp_path / "processor_config.json").write_text(processor_config)
    with pytest.raises(UserError) as error:
        loading.load_image_processor(str(tmp_path))
    assert str(error.value) == f"{tmp_path} {NO_IMAGE_PROCESSOR}"


@pytest.mark.parametrize("layout, damaged", [("4.x", "preprocessor_config.json"), ("5.x", "processor_config.json"),
                                             ("4.x", "processor_config.json")])
def test_a_damaged_image_processor_file_is_named_whichever_holds_the_settings(tmp_path, layout, damaged):
    # transformers 5.x reads processor_config.json first when it is there: checked in the 4.x layout too
    image_processor_files(tmp_path, layout)
    (tmp_path / damaged).write_bytes(b'{"image_processor": {"crop_size": "\xe9"}}')
    with pytest.raises(BadFileError) as error:
        loading.load_image_processor(str(tmp_path))
    assert str(error.value) == (f"{tmp_path / damaged}: is not UTF-8 text (byte 0xe9 at line 1, column 36); "
                                f"{loading.SAVE_AGAIN}")


def test_transformers_before_4_56_is_told_to_upgrade_for_the_5x_layout(tmp_path, monkeypatch):
    nested, legacy = image_processor_files(tmp_path / "5.x", "5.x"), image_processor_files(tmp_path / "4.x", "4.x")
    monkeypatch.setattr(transformers, "__version__", "4.55.4")
    with pytest.raises(UserError) as error:
        loading.check_checkpoint(nested, "image processor")
    assert str(error.value) == (f"{nested} holds its image processor in processor_config.json (as transformers 5.x "
                                "saves it), which transformers 4.55.4 does not read: upgrade transformers to 4.56 "
                                "or later")
    loading.check_checkpoint(legacy, "image processor")  # the 4.x layout passes
    monkeypatch.setattr(transformers, "__version__", "4.56.0")
    loading.check_checkpoint(nested, "image processor")
