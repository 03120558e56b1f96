"""Mistakes users make get one line naming the bad value and the fix, exit code 2, and no traceback."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import one_dataset

ROOT = Path(__file__).resolve().parents[1]


def run_stage(tmp_path: Path, stage: str, params: dict, *args: str, env: dict | None = None):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", str(tmp_path / "params.yaml"), *args],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def assert_one_line_error(done, *fragments: str):
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def data_params(dataset, **changes):
    return {"datasets": one_dataset(str(dataset), **changes)}


def fetch_paths(tmp_path: Path) -> list[str]:
    return ["--out", str(tmp_path / "s"), "--templates", str(tmp_path / "templates.json"),
            "--metrics", str(tmp_path / "fetch.json")]


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}],
                         ids=["offline-mode", "hub-unreachable"])
def test_missing_model_offline_fails_fast(tmp_path, env):
    params = {"models": {"m": {"name": "openai/clip-vit-base-patch32"}}, "model": {"device": "cpu"},
              "extract": {"batch_size": 2}}
    start = time.monotonic()
    done = run_stage(tmp_path, "extract", params, "--subset", str(tmp_path), "--out", str(tmp_path / "f"),
                     env={"HF_HOME": str(tmp_path / "hf"), **env})
    assert time.monotonic() - start < 30  # the imports take most of it; no minutes of retries
    assert_one_line_error(done, "model 'openai/clip-vit-base-patch32'", "`hf download openai/clip-vit-base-patch32`",
                          "local directory")


def test_missing_dataset_offline_fails_fast(tmp_path):
    done = run_stage(tmp_path, "fetch", data_params("zh-plus/tiny-imagenet"), *fetch_paths(tmp_path),
                     env={"HF_HOME": str(tmp_path / "hf")})
    assert_one_line_error(done, "dataset 'zh-plus/tiny-imagenet'",
                          "`hf download zh-plus/tiny-imagenet --repo-type dataset`",
                          "datasets.shapes.source")


def test_class_missing_from_the_dataset(tmp_path, shape_folder):
    done = run_stage(tmp_path, "fetch", data_params(shape_folder, classes=["red circle", "pink elephant"]),
                     *fetch_paths(tmp_path))
    assert_one_line_error(done, "datasets.shapes.classes", "pink elephant")


@pytest.mark.parametrize("folders", [[], ["cat"]], ids=["empty", "one-class"])
def test_folder_without_two_classes(tmp_path, folders):
    from PIL import Image
    root = tmp_path / "images"
    root.mkdir()
    for name in folders:
        (root / name).mkdir()
        Image.new("RGB", (8, 8)).save(root / name / "1.png")
    done = run_stage(tmp_path, "fetch", data_params(root), *fetch_paths(tmp_path))
    if folders:
        assert_one_line_error(done, "has 1 class folder(s)", "at least 2")
    else:  # neither an image folder nor a hub dataset's parquet folder
        assert_one_line_error(done, "has 0 class folders with images and no parquet files",
                              "or a hub dataset's folder (data/<split>-*.parquet)")


@pytest.mark.parametrize("value", [0, 1, 1.5, "0.2"])
def test_bad_test_size(tmp_path, shape_folder, value):
    done = run_stage(tmp_path, "fetch", data_params(shape_folder, test_size=value), *fetch_paths(tmp_path))
    assert_one_line_error(done, "datasets.shapes.test_size", "between 0 and 1")


def zeroshot_paths(tmp_path: Path) -> list[str]:
    (tmp_path / "templates.json").write_text('{"templates": null}')  # as fetch writes it for a folder
    return ["--subset", str(tmp_path), "--own-templates", str(tmp_path / "templates.json"), "--features", str(tmp_path),
            "--out", str(tmp_path / "zeroshot"),
            "--metrics", str(tmp_path / "zeroshot.json"), "--confusion", str(tmp_path / "confusion.json"),
            "--heads", str(tmp_path / "heads.npz")]


def test_template_without_placeholder(tmp_path, tiny_clip_dir):
    params = {"models": {"m": {"name": str(tiny_clip_dir)}}, "model": {"device": "cpu"},
              **data_params(tmp_path), "zeroshot": {"templates": ["a photo of a cat"]}}
    done = run_stage(tmp_path, "zeroshot", params, *zeroshot_paths(tmp_path))
    assert_one_line_error(done, "'a photo of a cat'", "{}")


def test_an_ensemble_named_like_a_template_key(tmp_path, tiny_clip_dir):
    params = {"models": {"m": {"name": str(tiny_clip_dir)}}, "model": {"device": "cpu"}, **data_params(tmp_path),
              "zeroshot": {"templates": ["a photo of a {}"], "ensembles": {"a_photo_of_a": ["a {}", "the {}"]}}}
    done = run_stage(tmp_path, "zeroshot", params, *zeroshot_paths(tmp_path))
    assert_one_line_error(done, "zeroshot.ensembles: ['a_photo_of_a'] is also the key of a template")


def test_not_a_clip_checkpoint(tmp_path):
    from transformers import BertConfig, BertModel
    BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                         vocab_size=10)).save_pretrained(tmp_path / "bert")
    params = {"models": {"m": {"name": str(tmp_path / "bert")}}, "model": {"device": "cpu"},
              "extract": {"batch_size": 2}}
    done = run_stage(tmp_path, "extract", params, "--subset", str(tmp_path), "--out", str(tmp_path / "f"))
    assert_one_line_error(done, "'bert' checkpoint, which no model family loads")
