"""The summary's library (clip_study.reporting.summary): the demo's committed metrics give its committed
summary.json and summary.md, and the paired tests count the right images."""

import json

import numpy as np
import pytest

from clip_study.files import read_json
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.heldout import HeldoutMetrics
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.scores import PairedTest
from clip_study.metrics_files.similarity import SimilarityMetrics
from clip_study.metrics_files.summary import PairedMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.metrics_files.zsinit import ZsinitMetrics
from clip_study.reporting.findings import overtakes_at
from clip_study.reporting.summary import build_summary, paired_tests, summary_table
from tools.imports import ROOT

READS = {"zeroshot": ZeroshotMetrics, "similarity": SimilarityMetrics, "probe": ProbeMetrics, "logreg": LogregMetrics,
         "fewshot": FewshotMetrics, "heldout": HeldoutMetrics, "zsinit": ZsinitMetrics}


@pytest.mark.parametrize("model", ["clip", "siglip"])
def test_the_demos_committed_metrics_give_its_committed_summary(model):
    """The summary stage's reading of the stages' files and writing of its own, on the demo's files (the paired
    tests need the test predictions, which are not committed: paired.json stands in for them)."""
    folder = ROOT / "demo" / "metrics" / "models" / model
    read = {name: record.from_json(read_json(folder / f"{name}.json")) for name, record in READS.items()}
    paired = PairedMetrics.from_json(read_json(folder / "paired.json"))
    summary = build_summary(paired=paired, **read)
    assert json.dumps({model: summary.to_json()}, indent=2) + "\n" == (folder / "summary.json").read_text()
    table = summary_table(summary, read["zeroshot"], read["similarity"], read["probe"], read["logreg"],
                          read["fewshot"], paired)
    assert table == (folder / "summary.md").read_text()


@pytest.mark.parametrize("model, sentence", [
    ("clip", "The few-shot logistic probe overtakes zero-shot at 16 labelled images per class (784 in all)."),
    ("siglip", "The few-shot logistic probe overtakes zero-shot only with all 80 labelled images per class "
               "(3920 in all)."),
])
def test_where_the_few_shot_probe_overtakes_zero_shot_says_all_when_it_is_every_labelled_image(model, sentence):
    """The demo's SigLIP overtakes zero-shot only at the curve's last point, "all" (80: every labelled image per
    class), which is no k one chose; its CLIP at k = 16."""
    folder = ROOT / "demo" / "metrics" / "models" / model
    read = {name: record.from_json(read_json(folder / f"{name}.json")) for name, record in READS.items()}
    paired = PairedMetrics.from_json(read_json(folder / "paired.json"))
    summary = build_summary(paired=paired, **read)
    table = summary_table(summary, read["zeroshot"], read["similarity"], read["probe"], read["logreg"],
                          read["fewshot"], paired)
    assert sentence in table
    assert summary.fewshot_overtakes_at_k == {"clip": 16, "siglip": 80}[model]


def test_all_is_said_with_up_to_when_the_classes_differ_in_size():
    point = FewshotMetrics.from_json({"num_classes": 3, "C": 1.0, "curve": [
        {"k": 8, "label": "all", "runs": 1, "mean_top1": 0.9, "std_top1": 0.0, "min_top1": 0.9, "max_top1": 0.9,
         "top1_low": 0.85, "top1_high": 0.95}]}).curve[0]
    assert overtakes_at(point, num_classes=3, train_images=24) == \
        "only with all 8 labelled images per class (24 in all)"
    assert overtakes_at(point, num_classes=3, train_images=20) == \
        "only with all labelled images (up to 8 per class) (20 in all)"


def test_the_paired_tests_count_the_images_only_one_classifier_gets_right():
    labels = np.array([0, 1, 2, 0, 1, 2])
    zeroshot = np.array([0, 1, 2, 1, 2, 0])  # right on the first three
    probe = np.array([0, 1, 0, 0, 1, 2])  # right on all but the third
    dot = PairedTest(a_only=0, b_only=0, p_value=1.0, verdict="not distinguishable at 6 test images (p = 1)")
    paired = paired_tests(labels, zeroshot, probe, None, dot)
    assert (paired.num_test_images, paired.probe_vs_zeroshot.a_only, paired.probe_vs_zeroshot.b_only) == (6, 3, 1)
    assert paired.logreg_vs_zeroshot is None and "logreg_vs_zeroshot" not in paired.to_json()
    assert paired.dot_vs_cosine is dot
