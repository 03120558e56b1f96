"""The summary's library (clip_study.reporting.summary): the demo's committed metrics give its committed
summary.json and summary.md, and the paired tests count the right images."""

import dataclasses
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
from clip_study.pipeline.sections.probe import TRAINING_BUDGET
from clip_study.reporting.findings import overtakes_at, still_improving
from clip_study.reporting.summary import build_summary, paired_tests, summary_table
from tools.imports import ROOT

READS = {"zeroshot": ZeroshotMetrics, "similarity": SimilarityMetrics, "probe": ProbeMetrics, "logreg": LogregMetrics,
         "fewshot": FewshotMetrics, "heldout": HeldoutMetrics, "zsinit": ZsinitMetrics}


@pytest.mark.parametrize("model", ["clip", "siglip"])
def test_the_demos_committed_metrics_give_its_committed_summary(model):
    """The summary stage's reading of the stages' files and writing of its own, on the demo's files (the paired
    tests need the test predictions, which are not committed: paired.json stands in for them)."""
    folder = ROOT / "demo" / "metrics" / "models" / model / "shapes"
    read = {name: record.from_json(read_json(folder / f"{name}.json")) for name, record in READS.items()}
    paired = PairedMetrics.from_json(read_json(folder / "paired.json"))
    summary = build_summary(paired=paired, **read)
    assert json.dumps({model: {"shapes": summary.to_json()}}, indent=2) + "\n" == (folder / "summary.json").read_text()
    table = summary_table(summary, read["zeroshot"], read["similarity"], read["probe"], read["logreg"],
                          read["fewshot"], paired, probe_budget=TRAINING_BUDGET)
    assert table == (folder / "summary.md").read_text()


@pytest.mark.parametrize("model, sentence", [
    ("clip", "The few-shot logistic probe overtakes zero-shot at 16 labelled images per class (784 in all)."),
    ("siglip", "The few-shot logistic probe overtakes zero-shot only with all 80 labelled images per class "
               "(3920 in all)."),
])
def test_where_the_few_shot_probe_overtakes_zero_shot_says_all_when_it_is_every_labelled_image(model, sentence):
    """The demo's SigLIP overtakes zero-shot only at the curve's last point, "all" (80: every labelled image per
    class), which is no k one chose; its CLIP at k = 16."""
    folder = ROOT / "demo" / "metrics" / "models" / model / "shapes"
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


UNDERTRAINED = "The probe ends below zero-shot while still improving"


def demo_clip_summary_table(probe: ProbeMetrics | None = None) -> str:
    """The summary table of the demo's committed CLIP metrics, with ``probe`` in place of its probe."""
    folder = ROOT / "demo" / "metrics" / "models" / "clip" / "shapes"
    read = {name: record.from_json(read_json(folder / f"{name}.json")) for name, record in READS.items()}
    read["probe"] = probe or read["probe"]
    paired = PairedMetrics.from_json(read_json(folder / "paired.json"))
    return summary_table(build_summary(paired=paired, **read), read["zeroshot"], read["similarity"], read["probe"],
                         read["logreg"], read["fewshot"], paired, probe_budget=TRAINING_BUDGET)


def under_trained(probe: ProbeMetrics, top1: float) -> ProbeMetrics:
    """``probe`` as it ends when its budget runs out too early: validation best at the last epoch, test ``top1``."""
    return dataclasses.replace(probe, epochs=10, chosen_epoch=10, test=dataclasses.replace(probe.test, top1=top1))


def test_a_probe_below_zero_shot_still_improving_at_its_last_epoch_is_said_to_need_more_training():
    """The main params' probe (lr 1e-4, 10 epochs) on the demo's CLIP ends 0.31 below zero-shot, its validation
    top-1 still rising at epoch 10; the committed demo probe (50 epochs at lr 0.002) chose epoch 46 of 50."""
    probe = ProbeMetrics.from_json(read_json(ROOT / "demo" / "metrics" / "models" / "clip" / "shapes" / "probe.json"))
    assert (probe.chosen_epoch, probe.epochs) == (46, 50)  # converged: no sentence
    assert UNDERTRAINED not in demo_clip_summary_table()
    table = demo_clip_summary_table(under_trained(probe, top1=0.613265))
    assert "The probe is -0.3082 top-1 from zero-shot. " + UNDERTRAINED in table
    assert "highest at its last epoch (10 of 10)" in table and "raise probe.epochs or probe.lr" in table


def test_a_probe_still_improving_is_said_so_only_below_zero_shot_and_after_two_epochs_or_more():
    probe = ProbeMetrics.from_json(read_json(ROOT / "demo" / "metrics" / "models" / "clip" / "shapes" / "probe.json"))
    assert still_improving(under_trained(probe, top1=0.5), zeroshot_top1=0.6).startswith(UNDERTRAINED)
    assert still_improving(under_trained(probe, top1=0.5), 0.6).endswith("raise its epochs or its learning rate and "
                                                                          "rerun.")  # a library caller: in words
    assert still_improving(under_trained(probe, top1=0.7), zeroshot_top1=0.6) is None  # above zero-shot
    assert still_improving(dataclasses.replace(under_trained(probe, 0.5), chosen_epoch=9), 0.6) is None  # converged
    one_epoch = dataclasses.replace(under_trained(probe, 0.5), epochs=1, chosen_epoch=1)
    assert still_improving(one_epoch, 0.6) is None  # one epoch shows no trend


def test_the_paired_tests_count_the_images_only_one_classifier_gets_right():
    labels = np.array([0, 1, 2, 0, 1, 2])
    zeroshot = np.array([0, 1, 2, 1, 2, 0])  # right on the first three
    probe = np.array([0, 1, 0, 0, 1, 2])  # right on all but the third
    dot = PairedTest(a_only=0, b_only=0, p_value=1.0, verdict="not distinguishable at 6 test images (p = 1)")
    paired = paired_tests(labels, zeroshot, probe, None, dot)
    assert (paired.num_test_images, paired.probe_vs_zeroshot.a_only, paired.probe_vs_zeroshot.b_only) == (6, 3, 1)
    assert paired.logreg_vs_zeroshot is None and "logreg_vs_zeroshot" not in paired.to_json()
    assert paired.dot_vs_cosine is dot
