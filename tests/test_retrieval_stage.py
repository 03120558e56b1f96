"""The retrieval stages end to end: retrieval.json's values against an independent computation on constructed
embeddings; the same images and captions as a captions-file folder and as a hub-style parquet folder give the same
results through fetch_captions, extract, embed_captions and retrieval; a template changes the captions encoded."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from clip_study.data.captions import read_captions
from clip_study.data.features import load_features, save_features
from clip_study.data.subset import write_subset
from clip_study.errors import BadFileError
from clip_study.evaluation.retrieval import Ranks
from clip_study.files import read_json
from clip_study.metrics_files.retrieval import FILES, RetrievalMetrics
from stages import embed_captions, extract, fetch_captions
from stages import retrieval as retrieval_stage
from tests.dvc_repo import ROOT

CAPTIONS = [["a red circle", "a circle, red"], ["a blue square"], ["a green star", "green star", "a star"],
            ["a blue circle", "the blue circle"], ["a red square"], ["a green circle", "circle"]]
COLOURS = [(200, 30, 30), (30, 30, 200), (30, 200, 30), (40, 40, 180), (190, 40, 40), (40, 190, 40)]
KS = [1, 2, 5]


def params(tmp_path, checkpoint=None, source="unused", template=None, resamples=200) -> str:
    """The project's params with one caption dataset ``caps`` and ``checkpoint`` as the only model ``tiny``."""
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["captions"] = {"caps": {"source": str(source), "split": "test", "max_images": None, "seed": 0,
                                   "on_bad_image": "skip"}}
    values["models"] = {"tiny": {"name": str(checkpoint or tmp_path), "family": "auto"}}
    values["model"]["device"] = "cpu"
    values["extract"].update(batch_size=4, workers=0, threads=1)
    values["retrieval"] = {"template": template, "recall_at": KS, "batch_size": 4}
    values["evaluation"].update(resamples=resamples, seed=5, confidence=0.9)
    path = tmp_path / "params.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    return str(path)


def png(colour: tuple[int, int, int], index: int) -> bytes:
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[...] = colour
    pixels[index % 16, :, :] = 255  # every image differs
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def captions_folder(root):
    (root / "images").mkdir(parents=True)
    lines = []
    for index, (colour, captions) in enumerate(zip(COLOURS, CAPTIONS)):
        (root / "images" / f"{index}.png").write_bytes(png(colour, index))
        lines.append(json.dumps({"image": f"images/{index}.png", "captions": captions}))
    (root / "test.jsonl").write_text("\n".join(lines) + "\n")
    return root


def parquet_folder(root):
    from datasets import Dataset, Features, Image as ImageFeature, Sequence, Value

    features = Features({"image": ImageFeature(), "captions": Sequence(Value("string"))})
    table = Dataset.from_dict({"image": [{"bytes": png(c, i), "path": None} for i, c in enumerate(COLOURS)],
                               "captions": CAPTIONS}, features=features)
    (root / "data").mkdir(parents=True)
    table.to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    return root


def run_all(tmp_path, source, checkpoint, template=None):
    """fetch_captions, extract, embed_captions and retrieval on ``source``, in ``tmp_path``; the output folder."""
    p, out = params(tmp_path, checkpoint, source, template), tmp_path / "out"
    subset, features, texts = out / "subset", out / "features", out / "captions.npz"
    fetch_captions.main(["--params", p, "--captions", "caps", "--out", str(subset), "--metrics", str(out / "fetch.json")])
    extract.main(["--params", p, "--model", "tiny", "--subset", str(subset), "--out", str(features),
                  "--fetched-by", "fetch_captions"])
    embed_captions.main(["--params", p, "--model", "tiny", "--captions", "caps", "--subset", str(subset),
                         "--out", str(texts)])
    retrieval_stage.main(["--params", p, "--model", "tiny", "--captions", "caps", "--subset", str(subset),
                          "--image-features", str(features / "test.npz"), "--text-features", str(texts),
                          "--out", str(out / "retrieval.json"), "--ranks", str(out / "ranks.npz"),
                          "--figure", str(out / "retrieval.png")])
    return out


def test_a_captions_file_folder_and_the_same_data_as_parquet_give_identical_results(tmp_path, tiny_clip_dir):
    by_file = run_all(tmp_path / "file", captions_folder(tmp_path / "file_source"), tiny_clip_dir)
    by_parquet = run_all(tmp_path / "parquet", parquet_folder(tmp_path / "parquet_source"), tiny_clip_dir)
    assert read_captions(by_file / "subset") == read_captions(by_parquet / "subset") == CAPTIONS
    for name in ("features/test.npz", "captions.npz", "ranks.npz"):
        assert np.array_equal(np.load(by_file / name)["features" if "ranks" not in name else "text_to_image"],
                              np.load(by_parquet / name)["features" if "ranks" not in name else "text_to_image"])
    first, second = read_json(by_file / "retrieval.json"), read_json(by_parquet / "retrieval.json")
    assert first == second and first["images"] == 6 and first["captions"] == 11
    assert first["image_to_text"]["queries"] == 6 and first["text_to_image"]["queries"] == 11
    with Image.open(by_file / "retrieval.png") as figure:
        assert figure.width > 300 and figure.height > 200

    prompted = run_all(tmp_path / "prompted", captions_folder(tmp_path / "prompted_source"), tiny_clip_dir,
                       template="a photo of {}")
    assert read_json(prompted / "retrieval.json")["template"] == "a photo of {}"
    assert not np.array_equal(np.load(prompted / "captions.npz")["features"],
                              np.load(by_file / "captions.npz")["features"])  # the template reached the encoder
    assert np.array_equal(np.load(prompted / "features" / "test.npz")["features"],
                          np.load(by_file / "features" / "test.npz")["features"])  # the images did not change


def constructed(tmp_path, rng):
    """A subset of 6 images with CAPTIONS and constructed features files (images near their captions, noisy)."""
    subset = tmp_path / "subset"
    files = []
    for index, colour in enumerate(COLOURS):
        files.append(tmp_path / f"{index}.png")
        files[-1].write_bytes(png(colour, index))
    from clip_study.data.sources import Example
    from clip_study.data.captions import write_captions

    write_subset(subset, [Example(class_id=str(i), path=f) for i, f in enumerate(files)], np.arange(6),
                 [{"id": str(i), "name": str(i)} for i in range(6)], {"test": np.arange(6)})
    write_captions(subset, CAPTIONS)
    text_image = np.repeat(np.arange(6), [len(c) for c in CAPTIONS])
    centres = rng.normal(size=(6, 8))
    images = centres + rng.normal(0, 0.9, (6, 8))
    texts = 3 * centres[text_image] + rng.normal(0, 2.5, (len(text_image), 8))  # norms differ: cosine, not dot
    save_features(tmp_path / "images.npz", images, np.arange(6))
    save_features(tmp_path / "texts.npz", texts, text_image)
    return subset, images, texts, text_image


def first_right(scores: np.ndarray, right: np.ndarray) -> np.ndarray:
    """1-based rank of each row's first right column, columns ordered by score, ties by index (stable sort)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.array([1 + int(np.flatnonzero(right[row][order[row]])[0]) for row in range(len(scores))])


def test_retrieval_json_holds_recall_and_ranks_computed_independently(tmp_path):
    subset, images, texts, text_image = constructed(tmp_path, np.random.default_rng(0))
    p = params(tmp_path)
    retrieval_stage.main(["--params", p, "--model", "tiny", "--captions", "caps", "--subset", str(subset),
                          "--image-features", str(tmp_path / "images.npz"), "--text-features", str(tmp_path / "texts.npz"),
                          "--out", str(tmp_path / "retrieval.json"), "--ranks", str(tmp_path / "ranks.npz"),
                          "--figure", str(tmp_path / "figure.png")])
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    scores = unit(images) @ unit(texts).T
    right = text_image[None, :] == np.arange(6)[:, None]
    image_ranks, text_ranks = first_right(scores, right), first_right(scores.T, right.T)
    ranks = Ranks.load(tmp_path / "ranks.npz")
    assert np.array_equal(ranks.image_to_text, image_ranks) and np.array_equal(ranks.text_to_image, text_ranks)
    result = FILES[0].read(tmp_path / "retrieval.json")
    assert isinstance(result, RetrievalMetrics) and (result.images, result.captions) == (6, 11)
    for direction, expected in (("image_to_text", image_ranks), ("text_to_image", text_ranks)):
        found = getattr(result, direction)
        assert found.benchmark_name == {"image_to_text": "text_retrieval", "text_to_image": "image_retrieval"}[direction]
        assert list(found.recall) == [f"recall@{k}" for k in KS]
        for k in KS:
            estimate = found.recall[f"recall@{k}"]
            assert estimate.value == pytest.approx(np.mean(expected <= k), abs=1e-6)
            assert estimate.low <= estimate.value <= estimate.high
        assert found.mean_rank.value == pytest.approx(expected.mean(), abs=1e-6)
        assert found.median_rank == pytest.approx(np.median(expected))
    assert result.intervals.resamples == 200 and result.intervals.stratified_by == "image"
    assert result.template is None
    with Image.open(tmp_path / "figure.png") as figure:
        assert figure.width > 300


def test_features_of_another_subset_are_refused_with_the_stage_to_rerun(tmp_path):
    subset, images, texts, text_image = constructed(tmp_path, np.random.default_rng(1))
    save_features(tmp_path / "texts.npz", texts[:-1], text_image[:-1])  # a caption short
    with pytest.raises(BadFileError, match="embed_captions"):
        retrieval_stage.main(["--params", params(tmp_path), "--model", "tiny", "--captions", "caps",
                              "--subset", str(subset), "--image-features", str(tmp_path / "images.npz"),
                              "--text-features", str(tmp_path / "texts.npz"), "--out", str(tmp_path / "r.json"),
                              "--ranks", str(tmp_path / "r.npz"), "--figure", str(tmp_path / "f.png")])
    assert load_features(tmp_path / "images.npz")[0].shape == (6, 8)
