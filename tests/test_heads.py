"""Linear heads kept where they were fitted (clip_study.evaluation.heads): the heads file round trip, WiSE-FT's mix
and its alpha choice, and the wiseft stage, which scores the mixes of the fitting stages' saved heads on the source
(logreg and zsinit run here on small synthetic features: a few seconds)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from clip_study.data import features
from clip_study.data.subset import validation_split
from clip_study.errors import UserError
from clip_study.evaluation import wiseft
from clip_study.evaluation.heads import Heads, LinearHead, best_alpha, load_heads, mix, save_heads
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.similarity import l2_normalize, similarity_scores
from clip_study.evaluation.zeroshot import ZeroShotHead, zero_shot_heads
from clip_study.files import read_json, save_npz, write_json
from stages import logreg, wiseft as wiseft_stage, zsinit
from tests.test_zeroshot_init import PARAMS, SCALE, shifted_clusters, text_embeddings, zeroshot_record

LOGREG = {"C_min": 0.1, "C_max": 100.0, "C_steps": 4, "val_fraction": 0.25, "seed": 0}
BOOTSTRAP = Bootstrap(resamples=200, seed=0, confidence=0.9)


def random_head(seed: int, classes: int = 4, dim: int = 8, normalize: bool = True) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(rng.normal(size=(classes, dim)).astype(np.float32), rng.normal(size=classes).astype(np.float32),
                      normalize)


@pytest.mark.parametrize("validation", [None, np.array([3, 1, 4])])
def test_a_heads_file_reads_back_what_was_saved(tmp_path, validation):
    heads = Heads([random_head(0), random_head(1, normalize=False)],
                  [{"name": "a", "classifier": "zeroshot", "key": "photo", "chosen": True},
                   {"name": "b", "classifier": "probe", "epoch": 7, "C": 0.25}],
                  np.array([[0, 1, 2], [3, 3, 0]]), np.array([0, 1, 3]), validation)
    save_heads(tmp_path / "heads.npz", heads)
    again = load_heads(tmp_path / "heads.npz")
    assert again.info == heads.info and [h.normalize for h in again.heads] == [True, False]
    for a, b in zip(again.heads, heads.heads):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
    np.testing.assert_array_equal(again.predictions, heads.predictions)
    np.testing.assert_array_equal(again.labels, heads.labels)
    assert (again.validation is None) if validation is None else np.array_equal(again.validation, validation)
    save_heads(tmp_path / "again.npz", again)  # the same heads, the same bytes
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "heads.npz").read_bytes()


def test_mix_at_0_is_the_zero_shot_head_and_at_1_the_fitted_head():
    zero_shot, fitted = random_head(2), random_head(3)
    x = np.random.default_rng(4).normal(size=(500, 8)).astype(np.float32)
    for alpha, expected in ((0, zero_shot), (0.0, zero_shot), (1, fitted), (1.0, fitted)):
        mixed = mix(zero_shot, fitted, alpha)
        np.testing.assert_array_equal(mixed.weights, expected.weights)
        np.testing.assert_array_equal(mixed.bias, expected.bias)
        np.testing.assert_array_equal(mixed.predict(x), expected.predict(x))
    half = mix(zero_shot, fitted, 0.5)
    np.testing.assert_allclose(half.logits(x), (zero_shot.logits(x) + fitted.logits(x)) / 2, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="both heads must score L2-normalised features"):
        mix(zero_shot, random_head(5, normalize=False), 0.5)
    with pytest.raises(UserError, match="alpha = 1.5 must be a number from 0"):
        mix(zero_shot, fitted, 1.5)


def test_best_alpha_takes_the_best_validation_top1_and_the_smaller_alpha_on_a_tie():
    assert best_alpha({0.0: 0.5, 0.1: 0.7, 0.2: 0.7, 0.3: 0.6}) == (0.1, 0.7)
    assert best_alpha({1.0: 0.4, 0.5: 0.4, 0.0: 0.4}) == (0.0, 0.4)
    assert wiseft.ALPHAS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def mixed_predictions(zero_shot: LinearHead, fitted: LinearHead, alpha: float, x: np.ndarray) -> np.ndarray:
    """WiSE-FT's mix written out: (1 - alpha) * zero-shot + alpha * fitted, weights and bias, on unit-norm x."""
    weights = (1 - alpha) * zero_shot.weights + alpha * fitted.weights
    bias = (1 - alpha) * zero_shot.bias + alpha * fitted.bias
    return (l2_normalize(x) @ weights.T + bias).argmax(axis=1)


def expected_curve(zero_shot: LinearHead, fitted: LinearHead, chooser: LinearHead, val, test) -> dict:
    """The chosen alpha (first best validation top-1 in ascending alpha), each alpha's test top-1 and whether an
    interior alpha beats both ends, computed without the library's choice."""
    val_top1 = [np.mean(mixed_predictions(zero_shot, chooser, a, val[0]) == val[1]) for a in wiseft.ALPHAS]
    test_top1 = [round(float(np.mean(mixed_predictions(zero_shot, fitted, a, test[0]) == test[1])), 6)
                 for a in wiseft.ALPHAS]
    chosen = wiseft.ALPHAS[int(np.argmax(val_top1))]  # argmax: the first of the best, i.e. the smallest alpha
    return {"chosen_alpha": chosen, "val_top1": [round(float(v), 6) for v in val_top1], "test_top1": test_top1,
            "interior_beats_ends": max(test_top1[1:-1]) > max(test_top1[0], test_top1[-1])}


def test_the_curve_chooses_alpha_on_validation_with_the_head_that_never_saw_it():
    x, y = shifted_clusters(60, seed=5)
    val, test = (x[:120], y[:120]), (x[120:], y[120:])
    zero_shot = LinearHead(SCALE * l2_normalize(text_embeddings()), np.zeros(4, dtype=np.float32), True)
    fitted, chooser = random_head(6), random_head(7)
    result = wiseft.curve(zero_shot, fitted, chooser, val, test, BOOTSTRAP)
    expected = expected_curve(zero_shot, fitted, chooser, val, test)
    summary = result.summary
    assert summary["chosen_alpha"] == expected["chosen_alpha"]
    assert [row["alpha"] for row in summary["rows"]] == list(wiseft.ALPHAS)
    assert [row["val_top1"] for row in summary["rows"]] == expected["val_top1"]
    assert [row["top1"] for row in summary["rows"]] == expected["test_top1"]
    assert summary["interior_beats_ends"] == expected["interior_beats_ends"]
    assert summary["chosen_test"]["top1"] == expected["test_top1"][wiseft.ALPHAS.index(expected["chosen_alpha"])]
    for row in summary["rows"]:
        assert row["top1_low"] <= row["top1"] <= row["top1_high"]
    for alpha, head, predicted in zip(wiseft.ALPHAS, result.heads, result.predictions):
        np.testing.assert_array_equal(predicted, head.predict(test[0]))
        np.testing.assert_array_equal(predicted, mixed_predictions(zero_shot, fitted, alpha, test[0]))


# the wiseft stage on the heads files of the zeroshot, logreg and zsinit stages

@pytest.fixture
def study(tmp_path) -> Path:
    """4 classes (40 train, 30 test images each); the zeroshot stage's outputs and heads ("photo" chosen) as that
    stage writes them; logreg and zsinit run on the features."""
    for split, per_class, seed in (("train", 40, 0), ("test", 30, 1)):
        features.save_features(tmp_path / "features" / f"{split}.npz", *shifted_clusters(per_class, seed))
    classifiers = {"photo": text_embeddings(), "other": np.ones((4, 8), dtype=np.float32)}
    save_npz(tmp_path / "zeroshot" / "text_features.npz", **classifiers)
    write_json(tmp_path / "subset" / "classes.json", [{"id": f"c{i}", "name": f"class {i}"} for i in range(4)])
    write_json(tmp_path / "zeroshot.json", zeroshot_record())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "logreg": LOGREG}))
    (_, _), (test_x, test_y) = features.load_splits(tmp_path / "features")
    predictions = {key: similarity_scores(test_x, weights).argmax(axis=1) for key, weights in classifiers.items()}
    save_heads(tmp_path / "heads" / "zeroshot.npz",
               zero_shot_heads(classifiers, ZeroShotHead(scale=SCALE, bias=0.0, probabilities="softmax"), "photo",
                               predictions, test_y))
    p, s = f"--params={tmp_path}/params.yaml", str(tmp_path)
    logreg.main([p, f"--features={s}/features", f"--subset={s}/subset", f"--out={s}/logreg",
                 f"--metrics={s}/logreg.json", f"--sweep={s}/sweep.json", f"--confusion={s}/confusion.json",
                 f"--heads={s}/heads/logreg.npz"])
    zsinit.main([p, f"--features={s}/features", f"--zeroshot={s}/zeroshot", f"--zeroshot-metrics={s}/zeroshot.json",
                 f"--metrics={s}/zsinit.json", f"--curve={s}/zsinit_curve.json", f"--heads={s}/heads/zsinit.npz"])
    return tmp_path


def run_wiseft(study: Path) -> None:
    s = str(study)
    wiseft_stage.main([f"--params={s}/params.yaml", f"--features={s}/features",
                       f"--zeroshot-heads={s}/heads/zeroshot.npz", f"--logreg-heads={s}/heads/logreg.npz",
                       f"--zsinit-heads={s}/heads/zsinit.npz", f"--heads={s}/heads/wiseft.npz",
                       f"--metrics={s}/wiseft.json", f"--curve={s}/wiseft_curve.json"])


def test_the_wiseft_stage_mixes_the_saved_heads_and_chooses_alpha_on_validation(study):
    run_wiseft(study)
    (train_x, train_y), (test_x, test_y) = features.load_splits(study / "features")
    saved = {name: load_heads(study / "heads" / f"{name}.npz") for name in ("zeroshot", "logreg", "zsinit")}
    zero_shot, _, zero_shot_predictions = saved["zeroshot"].named("zeroshot/photo")
    C = read_json(study / "logreg.json")["C"]
    fit, val = validation_split(train_y, LOGREG["val_fraction"], LOGREG["seed"])
    _, zsinit_val = validation_split(train_y, PARAMS["evaluation"]["val_fraction"], PARAMS["evaluation"]["seed"])
    ends = {"logreg": ("logreg", f"logreg/C={C:.4g}", val), "zsinit": ("zsinit/k=all/seed=0",) * 2 + (zsinit_val,)}

    metrics = read_json(study / "wiseft.json")
    assert list(metrics) == ["num_classes", "num_test_images", "zero_shot", "alphas", "curves"]
    assert (metrics["num_classes"], metrics["num_test_images"], metrics["zero_shot"]) == (4, 120, "zeroshot/photo")
    assert metrics["alphas"] == list(wiseft.ALPHAS) and list(metrics["curves"]) == ["logreg", "zsinit"]
    heads = load_heads(study / "heads" / "wiseft.npz")
    np.testing.assert_array_equal(heads.labels, test_y)
    assert heads.validation is None and len(heads.heads) == 22
    plot = read_json(study / "wiseft_curve.json", expect=list)
    for name, (fitted_name, chooser_name, validation) in ends.items():
        curve = metrics["curves"][name]
        fitted, _, fitted_predictions = saved[name].named(fitted_name)
        chooser, _, _ = saved[name].named(chooser_name)
        expected = expected_curve(zero_shot, fitted, chooser, (train_x[validation], train_y[validation]),
                                  (test_x, test_y))
        assert (curve["fitted"], curve["chosen_by"], curve["num_val_images"]) == (fitted_name, chooser_name,
                                                                                  len(validation))
        assert curve["chosen_alpha"] == expected["chosen_alpha"]
        assert [row["val_top1"] for row in curve["rows"]] == expected["val_top1"]
        assert [row["top1"] for row in curve["rows"]] == expected["test_top1"]
        assert curve["interior_beats_ends"] == expected["interior_beats_ends"]
        chosen_row = curve["rows"][wiseft.ALPHAS.index(curve["chosen_alpha"])]
        assert curve["chosen_test"] == {key: chosen_row[key] for key in ("top1", "top1_low", "top1_high")}
        assert curve["chosen_val_top1"] == chosen_row["val_top1"] == max(expected["val_top1"])
        assert [row for row in plot if row["curve"] == name] == [
            {"curve": name, "alpha": row["alpha"], "val_top1": row["val_top1"], "test_top1": row["top1"]}
            for row in curve["rows"]]

        mixes = heads.where(classifier=f"wiseft_{name}")
        assert [heads.info[i] for i in mixes] == [
            {"name": f"wiseft_{name}/alpha={alpha:g}", "classifier": f"wiseft_{name}", "alpha": alpha,
             "chosen": alpha == expected["chosen_alpha"]} for alpha in wiseft.ALPHAS]
        for i, alpha in zip(mixes, wiseft.ALPHAS):
            np.testing.assert_array_equal(heads.heads[i].predict(test_x), heads.predictions[i])
            np.testing.assert_array_equal(heads.predictions[i], mixed_predictions(zero_shot, fitted, alpha, test_x))
        np.testing.assert_array_equal(heads.predictions[mixes[0]], zero_shot_predictions)  # alpha 0: zero-shot
        np.testing.assert_array_equal(heads.predictions[mixes[-1]], fitted_predictions)  # alpha 1: the fitted head
    # the refitted probe's mixes are scored on test, but alpha is chosen with the sweep's probe, which never saw
    # the validation images (the refit trained on them)
    assert ends["logreg"][1] != "logreg" and saved["logreg"].named(ends["logreg"][1])[1]["chosen"]


@pytest.mark.parametrize("name, change, problem", [
    ("logreg", lambda h: Heads(h.heads, h.info, h.predictions, h.labels), "holds no validation indices"),
    ("zsinit", lambda h: Heads([LinearHead(w.weights[:, :4], w.bias, True) for w in h.heads], h.info, h.predictions,
                               h.labels, h.validation), "holds heads of shapes [(4, 4)], not (4, 8)"),
    ("zeroshot", lambda h: Heads(h.heads, [{**i, "chosen": False} for i in h.info], h.predictions, h.labels),
     "holds 0 heads with {'classifier': 'zeroshot', 'chosen': True}, not one"),
    ("zeroshot", lambda h: Heads(h.heads, h.info, h.predictions, (h.labels + 1) % 4),
     "was written for other test images"),
])
def test_a_heads_file_that_does_not_fit_is_one_line_naming_the_stage_that_rebuilds_it(study, name, change, problem):
    path = study / "heads" / f"{name}.npz"
    save_heads(path, change(load_heads(path)))
    with pytest.raises(UserError, match=re.escape(problem)) as error:
        run_wiseft(study)
    assert "\n" not in str(error.value) and str(error.value).startswith(str(path))
    assert str(error.value).endswith(f"dvc repro --force --single-item {name}`")
    assert not (study / "wiseft.json").exists()


def test_run_by_dvc_the_fix_names_the_pairs_own_stage(study, monkeypatch):
    """wiseft is a per-pair stage: the rebuild hint of a file it reads names the same pair's stage in the same
    pipeline file."""
    path = study / "heads" / "logreg.npz"
    path.write_bytes(b"not an npz")
    monkeypatch.setenv("DVC_STAGE", "demo/dvc.yaml:wiseft@clip-shapes")
    with pytest.raises(UserError) as error:
        run_wiseft(study)
    assert str(error.value).startswith(f"{path}: is not a readable npz file")
    assert str(error.value).endswith("dvc repro --force --single-item demo/dvc.yaml:logreg@clip-shapes`")
