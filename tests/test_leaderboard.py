"""The leaderboard's library: one row per model from its metrics files, paired tests between models on the same
test images, and the front page; on the demo's committed metrics and on small synthetic rows."""

import numpy as np
import pytest

from clip_study.errors import UserError
from clip_study.files import read_json
from clip_study.metrics_files.extract import ExtractMetrics
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.leaderboard import Leaderboard, LeaderboardRow
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.pipeline.stage import rebuild
from clip_study.reporting.leaderboard import build_leaderboard, leaderboard_report, model_row, paired_between_models
from tools.imports import ROOT

DEMO = ROOT / "demo" / "metrics"
DEMO_MODELS = ("clip", "siglip")


def result(top1):
    return {"top1": top1, "top1_low": top1 - 0.05, "top1_high": top1 + 0.05}


def row(model, family, top1):
    return LeaderboardRow.from_json({
        "model": model, "checkpoint": f"ckpt/{model}", "family": family, "parameters": 1_000_000,
        "device": "cpu", "zeroshot": {"key": "photo", **result(top1)},
        "zeroshot_template": {"key": "photo", "template": "a photo of a {}", **result(top1)},
        "zeroshot_ensembles": {}, "probe": result(top1 + 0.1), "logreg": result(top1 + 0.1),
        "fewshot_16": None, "zeroshot_ece": 0.05})


def test_the_rows_and_the_front_page_of_the_demos_committed_metrics_are_the_committed_ones():
    """The leaderboard's reading of each model's files: its rows are leaderboard.json's, its front page from them
    report.md (the paired tests between models need the test predictions, which are not committed)."""
    board = Leaderboard.from_json(read_json(DEMO / "leaderboard.json"))
    reads = {"extract": ExtractMetrics, "zeroshot": ZeroshotMetrics, "probe": ProbeMetrics, "logreg": LogregMetrics,
             "fewshot": FewshotMetrics}
    rows = [model_row(model, **{name: record.from_json(read_json(DEMO / "models" / model / f"{name}.json"))
                                for name, record in reads.items()}) for model in DEMO_MODELS]
    assert rows == board.models
    reports = {model: f"models/{model}/report.md" for model in DEMO_MODELS}
    assert leaderboard_report(board, "figures/leaderboard.png", reports) == (DEMO / "report.md").read_text()


def predictions(labels, wrong):
    """Every classifier right except on the images ``wrong`` marks."""
    guessed = np.where(wrong, (labels + 1) % 3, labels)
    return {"labels": labels, "zeroshot": guessed, "probe": guessed, "logreg": guessed}


def test_each_model_is_compared_with_the_leader_on_the_same_images():
    labels = np.arange(60) % 3
    good, bad = np.zeros(60, bool), np.arange(60) < 30  # the second model misses 30 images the first gets
    board = build_leaderboard([row("b", "hf_siglip", 0.5), row("a", "hf_clip", 1.0)],
                              {"a": predictions(labels, good), "b": predictions(labels, bad)}, num_classes=3)
    assert board.leader == "a" and set(board.vs_leader) == {"b"}
    assert board.vs_leader["b"].zeroshot.b_only == 30 and board.vs_leader["b"].zeroshot.a_only == 0
    assert board.vs_leader["b"].zeroshot.verdict.startswith("worse, p < 0.001")
    reports = {"a": "models/a/report.md", "b": "models/b/report.md"}
    report = leaderboard_report(board, "figures/leaderboard.png", reports)
    assert report.index("| **a** |") < report.index("| **b** |")  # best zero-shot first
    assert "**b** against the leader **a** (hf_siglip, sigmoid loss against hf_clip, contrastive softmax loss)" \
        in report
    assert "- [b](models/b/report.md)" in report


def test_models_scored_on_different_test_images_are_refused():
    labels = np.arange(6) % 3
    with pytest.raises(UserError, match="models b and a were scored on different test images"):
        paired_between_models({"a": predictions(labels, np.zeros(6, bool)),
                               "b": predictions(labels[::-1].copy(), np.zeros(6, bool))}, "a")


def test_the_fix_for_a_damaged_file_names_the_models_stage(monkeypatch):
    monkeypatch.setenv("DVC_STAGE", "demo/dvc.yaml:summary@siglip")
    assert rebuild("zeroshot").endswith("`dvc repro --force --single-item demo/dvc.yaml:zeroshot@siglip`")
    assert rebuild("fetch").endswith("`dvc repro --force --single-item demo/dvc.yaml:fetch`")  # one for all models
