"""Tests for the zero-shot-initialised head (clip_study.evaluation.zeroshot_init) and the zsinit stage, on small
synthetic features (a few seconds in all)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest
import yaml

from clip_study.data import features
from clip_study.data.subset import validation_split
from clip_study.errors import UserError
from clip_study.evaluation import zeroshot_init as zsinit_lib
from clip_study.evaluation.heads import load_heads
from clip_study.evaluation.similarity import similarity_scores
from clip_study.files import read_json, save_npz, write_json
from stages import zsinit

SCALE = 18.87
TRAINING = zsinit_lib.HeadTraining(steps=60, lr=0.01, weight_decay=0.1, alphas=zsinit_lib.alpha_grid(11))
PARAMS = {"fewshot": {"shots": [1, 2, 50], "seeds": 3, "seed": 0},
          "zsinit": {"steps": 60, "lr": 0.01, "weight_decay": 0.1, "alpha_steps": 11},
          "evaluation": {"val_fraction": 0.25, "resamples": 200, "confidence": 0.9, "seed": 0,
                         "calibration_bins": 10}}


def shifted_clusters(per_class: int, seed: int, num_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Images of class c around e_c + 0.9 e_(c+1): the class text embedding e_c (zero-shot) ranks c first only
    by a small margin, so noise makes zero-shot err often, while a trained head can learn the shift."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), per_class)
    eye = np.eye(2 * num_classes)
    x = eye[y] + 0.9 * eye[(y + 1) % num_classes] + rng.normal(scale=0.35, size=(len(y), 2 * num_classes))
    return x.astype(np.float32), y


def text_embeddings(num_classes: int = 4) -> np.ndarray:
    """Class c's text embedding: 3 e_c (unnormalised, as the zeroshot stage stores them)."""
    return (3.0 * np.eye(num_classes, 2 * num_classes)).astype(np.float32)


def test_the_untrained_head_is_zero_shot():
    x, _ = shifted_clusters(50, seed=3)
    rng = np.random.default_rng(0)
    text = rng.normal(size=(4, 8)).astype(np.float32) * 5  # any unnormalised class embeddings
    head = zsinit_lib.head_from_text_features(text)
    assert np.allclose(np.linalg.norm(head[0], axis=1), 1.0) and not head[1].any()
    cosine = similarity_scores(x, text, "cosine")
    assert np.array_equal(zsinit_lib.head_scores(x, head, SCALE), SCALE * cosine)  # bit for bit
    assert np.array_equal(zsinit_lib.predict(x, head, SCALE), cosine.argmax(axis=1))


def test_alpha_0_is_zero_shot_and_alpha_1_the_trained_head():
    x, y = shifted_clusters(5, seed=1)
    start = zsinit_lib.head_from_text_features(text_embeddings())
    trained = zsinit_lib.train_head(x, y, start, SCALE, TRAINING, seed=0)
    for alpha, expected in ((0.0, start), (1.0, trained)):
        mixed = zsinit_lib.interpolate(start, trained, alpha)
        assert all(np.array_equal(a, b) for a, b in zip(mixed, expected))
    half = zsinit_lib.interpolate(start, trained, 0.5)
    assert np.allclose(half[0], (start[0] + trained[0]) / 2) and np.allclose(half[1], trained[1] / 2)


def test_training_is_deterministic_and_fits_the_images():
    x, y = shifted_clusters(5, seed=1)
    start = zsinit_lib.head_from_text_features(text_embeddings())
    first = zsinit_lib.train_head(x, y, start, SCALE, TRAINING, seed=0)
    again = zsinit_lib.train_head(x, y, start, SCALE, TRAINING, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert first[0].dtype == np.float32 and first[0].shape == (4, 8) and first[1].shape == (4,)
    assert not np.array_equal(first[0], start[0])
    before = np.mean(zsinit_lib.predict(x, start, SCALE) == y)
    after = np.mean(zsinit_lib.predict(x, first, SCALE) == y)
    assert after == 1.0 and before < 0.9  # zero-shot errs on the shifted clusters; 60 steps fit 20 images
    no_steps = zsinit_lib.HeadTraining(steps=0, lr=0.01, weight_decay=0.0, alphas=(0.0,))
    untrained = zsinit_lib.train_head(x, y, start, SCALE, no_steps, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(untrained, start))


def test_the_chosen_alpha_maximises_validation_top1():
    """Two classes on the unit circle, the trained head differing from zero-shot in its bias only: class 1 is
    predicted when sin(theta) - cos(theta) > alpha, so validation images at v = sin - cos of 0.1, 0.25 (class 0)
    and 0.35, 0.5 (class 1) are all right for alpha in [0.25, 0.35) only: 0.3 on the grid."""
    start = (np.eye(2), np.zeros(2))
    trained = (np.eye(2), np.array([0.0, -1.0]))
    v = np.array([-0.5, 0.1, 0.25, 0.35, 0.5, 0.8])
    theta = np.arcsin(v / np.sqrt(2)) + np.pi / 4
    val_x, val_y = np.stack([np.cos(theta), np.sin(theta)], axis=1), np.array([0, 0, 0, 1, 1, 1])
    alpha, top1 = zsinit_lib.choose_alpha(val_x, val_y, start, trained, 1.0, zsinit_lib.alpha_grid(11))
    assert (alpha, top1) == (0.3, 1.0)
    for other in zsinit_lib.alpha_grid(11):
        predicted = zsinit_lib.predict(val_x, zsinit_lib.interpolate(start, trained, other), 1.0)
        assert np.mean(predicted == val_y) < 1.0 or other == 0.3
    # all alphas tie (nothing trained): the smallest, zero-shot itself
    assert zsinit_lib.choose_alpha(val_x, val_y, start, start, 1.0, (0.0, 0.5, 1.0)) == (0.0, 4 / 6)


def test_alpha_grid():
    assert zsinit_lib.alpha_grid(11) == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert zsinit_lib.alpha_grid(2) == (0.0, 1.0)
    for steps in (1, 0, 2.5, True):
        with pytest.raises(UserError, match="alpha steps: give a whole number >= 2"):
            zsinit_lib.alpha_grid(steps)


def zeroshot_record(**fields) -> dict:
    """A zeroshot.json whose chosen classifier is "photo", at SCALE (the demo's CLIP's record otherwise)."""
    record = read_json(Path(__file__).parents[1] / "demo" / "metrics" / "models" / "clip" / "shapes" / "zeroshot.json")
    return {**record, "best": "photo", "logit_scale": SCALE, **fields}


@pytest.fixture
def study(tmp_path) -> Path:
    """4 classes (40 train, 30 test images each), the zeroshot stage's outputs, params."""
    for split, per_class, seed in (("train", 40, 0), ("test", 30, 1)):
        features.save_features(tmp_path / "features" / f"{split}.npz", *shifted_clusters(per_class, seed))
    save_npz(tmp_path / "zeroshot" / "text_features.npz", photo=text_embeddings(),
             other=np.ones((4, 8), dtype=np.float32))
    write_json(tmp_path / "zeroshot.json", zeroshot_record())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return tmp_path


def run_zsinit(study: Path) -> None:
    zsinit.main(["--params", str(study / "params.yaml"), "--features", str(study / "features"),
                 "--zeroshot", str(study / "zeroshot"), "--zeroshot-metrics", str(study / "zeroshot.json"),
                 "--metrics", str(study / "zsinit.json"), "--curve", str(study / "curve.json"),
                 "--heads", str(study / "heads" / "zsinit.npz")])


def test_zsinit_stage_end_to_end(study):
    run_zsinit(study)
    result = read_json(study / "zsinit.json")
    (train_x, train_y), (test_x, test_y) = features.load_splits(study / "features")
    fit, val = validation_split(train_y, 0.25, 0)
    zero_shot = similarity_scores(test_x, text_embeddings()).argmax(axis=1)
    val_zero_shot = similarity_scores(train_x[val], text_embeddings()).argmax(axis=1)
    assert (result["num_classes"], result["zero_shot"], result["logit_scale"]) == (4, "photo", SCALE)
    assert result["zero_shot_top1"] == round(float(np.mean(zero_shot == test_y)), 6)
    assert result["zero_shot_val_top1"] == round(float(np.mean(val_zero_shot == train_y[val])), 6)
    assert (result["num_fit_images"], result["num_val_images"]) == (120, 40)
    assert result["alphas"] == list(zsinit_lib.alpha_grid(11))
    assert result["zero_shot_top1"] < 0.85  # the shift fools zero-shot: there is something to learn

    curve = result["curve"]
    assert [(row["k"], row["label"], row["runs"]) for row in curve] == [(1, "1", 3), (2, "2", 3), (30, "all", 1)]
    for row in curve:
        for name in ("init", "mix"):
            stats = row[name]
            assert stats["min_top1"] <= stats["mean_top1"] <= stats["max_top1"] and stats["std_top1"] >= 0
            assert stats["top1_low"] <= stats["mean_top1"] <= stats["top1_high"]
            assert stats["top1_high"] - stats["top1_low"] > 0.01  # 120 test images: a real interval
        mix = row["mix"]
        assert len(mix["alphas"]) == row["runs"] and set(mix["alphas"]) <= set(result["alphas"])
        assert mix["mean_alpha"] == pytest.approx(np.mean(mix["alphas"]), abs=1e-6)
        assert mix["mean_val_top1"] >= result["zero_shot_val_top1"]  # alpha = 0 (zero-shot) is on the grid
    everything = curve[-1]
    assert everything["init"]["std_top1"] == 0 and everything["mix"]["std_top1"] == 0
    assert everything["mix"]["mean_top1"] >= result["zero_shot_top1"] + 0.1  # 30 images per class fix the shift

    # the "all" point is the head trained on every fit image, mixed by the alpha validation chose
    start = zsinit_lib.head_from_text_features(text_embeddings())
    settings = zsinit_lib.HeadTraining(steps=60, lr=0.01, weight_decay=0.1, alphas=zsinit_lib.alpha_grid(11))
    trained = zsinit_lib.train_head(train_x[fit], train_y[fit], start, SCALE, settings, seed=0)
    alpha, _ = zsinit_lib.choose_alpha(train_x[val], train_y[val], start, trained, SCALE, settings.alphas)
    assert everything["mix"]["alphas"] == [alpha]
    assert everything["init"]["mean_top1"] == round(float(np.mean(zsinit_lib.predict(test_x, trained, SCALE)
                                                                   == test_y)), 6)
    mixed = zsinit_lib.predict(test_x, zsinit_lib.interpolate(start, trained, alpha), SCALE)
    assert everything["mix"]["mean_top1"] == round(float(np.mean(mixed == test_y)), 6)
    assert read_json(study / "curve.json", expect=list) == [
        {"k": row["k"], "init_mean_top1": row["init"]["mean_top1"], "mix_mean_top1": row["mix"]["mean_top1"]}
        for row in curve]

    # the heads file: per run the trained head and its mix, the scale folded in, giving the curve's test scores
    heads = load_heads(study / "heads" / "zsinit.npz")
    np.testing.assert_array_equal(heads.validation, val)
    np.testing.assert_array_equal(heads.labels, test_y)
    runs = [(row["k"], row["label"], seed, alpha) for row in curve for seed, alpha in enumerate(row["mix"]["alphas"])]
    assert heads.info == [entry for k, label, seed, alpha in runs for entry in (
        {"name": f"zsinit/k={label}/seed={seed}", "classifier": "zsinit", "k": k, "label": label, "seed": seed},
        {"name": f"zsinit_mix/k={label}/seed={seed}", "classifier": "zsinit_mix", "k": k, "label": label,
         "seed": seed, "alpha": alpha})]
    for head, predicted in zip(heads.heads, heads.predictions):
        assert head.normalize
        np.testing.assert_array_equal(head.predict(test_x), predicted)
    for row in curve:
        for name, classifier in (("init", "zsinit"), ("mix", "zsinit_mix")):
            runs = heads.where(classifier=classifier, label=row["label"])
            assert row[name]["mean_top1"] == round(float(np.mean(heads.predictions[runs] == test_y)), 6)
    head, _, predicted = heads.named("zsinit/k=all/seed=0")
    np.testing.assert_allclose(head.weights, SCALE * trained[0], rtol=1e-6)  # the scale folded into the weights
    np.testing.assert_array_equal(head.bias, trained[1])
    np.testing.assert_array_equal(predicted, zsinit_lib.predict(test_x, trained, SCALE))
    mix, _, predicted = heads.named("zsinit_mix/k=all/seed=0")
    np.testing.assert_allclose(mix.weights, SCALE * zsinit_lib.interpolate(start, trained, alpha)[0], rtol=1e-6)
    np.testing.assert_array_equal(predicted, mixed)


@pytest.mark.parametrize("section, key, value, message", [
    ("zsinit", "steps", 0, "zsinit.steps: 0 must be a whole number >= 1"),
    ("zsinit", "lr", 0, "zsinit.lr: 0 must be a finite number > 0"),
    ("zsinit", "weight_decay", -1.0, "zsinit.weight_decay: -1.0 must be a finite number >= 0"),
    ("zsinit", "alpha_steps", 1, "zsinit.alpha_steps: 1 must be a whole number >= 2"),
    ("zsinit", "alpha", 11, "zsinit.alpha: unknown key; did you mean zsinit.alpha_steps?"),
    ("evaluation", "val_fraction", 0.01, "evaluation.val_fraction: 0.01 cannot carve a stratified validation"),
    ("fewshot", "seeds", 0, "fewshot.seeds: 0 must be a whole number >= 1"),
])
def test_bad_params_are_one_line_errors(study, section, key, value, message):
    params = {name: dict(values) for name, values in PARAMS.items()}
    params[section][key] = value
    (study / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(UserError, match=message) as error:
        run_zsinit(study)
    assert "\n" not in str(error.value)


def test_a_missing_section_or_a_damaged_zeroshot_record_is_a_one_line_error(study):
    (study / "params.yaml").write_text(yaml.safe_dump({k: v for k, v in PARAMS.items() if k != "zsinit"}))
    with pytest.raises(UserError, match="section 'zsinit' is missing or not a mapping: add 'zsinit:'"):
        run_zsinit(study)
    (study / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    without_scale = {key: value for key, value in zeroshot_record().items() if key != "logit_scale"}
    for record, problem in ((without_scale, "has no field 'logit_scale'"),
                            (zeroshot_record(logit_scale=0), "'logit_scale' is 0, not a number > 0"),
                            (zeroshot_record(best="sketch"), "has no array 'sketch'")):
        write_json(study / "zeroshot.json", record)
        with pytest.raises(UserError, match=problem) as error:
            run_zsinit(study)
        assert "\n" not in str(error.value) and "dvc repro --force --single-item zeroshot" in str(error.value)
    save_npz(study / "zeroshot" / "text_features.npz", photo=np.ones((3, 8), dtype=np.float32))
    write_json(study / "zeroshot.json", zeroshot_record())
    with pytest.raises(UserError, match=r"'photo' holds \(3, 8\) values, not finite \(4, 8\) class embeddings"):
        run_zsinit(study)
