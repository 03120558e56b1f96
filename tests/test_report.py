"""The report stage: markdown + PNG figures from the metrics files, on the demo's real metrics plus small
synthetic logreg, few-shot and confusion files (6 classes)."""

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from clip_study.errors import UserError
from clip_study.reporting.figures import plot_reliability, reliability_panels
from clip_study.reporting.results import load_model_results
from stages import report

DEMO = Path(__file__).resolve().parent.parent / "demo" / "metrics" / "models" / "clip" / "shapes"  # the demo's CLIP on its shapes
REAL = ("zeroshot", "similarity", "probe", "probe_curve", "summary", "heldout")
CLASSES = ["blue circle", "blue square", "red circle", "red square", "green star", "white cross"]
CORRECT = [4, 3, 3, 2, 1, 4]  # of 4 test images per class; each mistake is predicted as the next class
CALIBRATION = {"temperature": 0.8, "bins": 15, "before": {"ece": 0.0512, "nll": 0.2, "brier": 0.1},
               "after": {"ece": 0.0123, "nll": 0.18, "brier": 0.09},
               "reliability_before": [{"lower": 0.8, "upper": 0.8667, "count": 10, "confidence": 0.85,
                                       "accuracy": 0.9}],
               "reliability_after": [{"lower": 0.8, "upper": 0.8667, "count": 10, "confidence": 0.86, "accuracy": 0.9}]}
LOGREG = {"num_classes": 6, "num_train_images": 96, "num_test_images": 24, "C": 3.162278, "val_top1": 0.8125,
          "top1": 0.9612, "top5": 1.0, "macro_f1": 0.9587, "mean_per_class_recall": 0.9601, "top1_low": 0.9412,
          "top1_high": 0.9801, "macro_f1_low": 0.9381, "macro_f1_high": 0.9779, "calibration": CALIBRATION}
SWEEP = [{"C": 10.0 ** e, "log10_C": float(e), "val_top1": v}
         for e, v in zip(range(-2, 3), (0.5, 0.7, 0.8, 0.81, 0.79))]
CURVE = ((1, "1", 5, 0.7), (2, "2", 5, 0.85), (4, "4", 5, 0.93), (8, "8", 5, 0.95), (16, "all", 1, 0.96))
# as the fewshot stage writes it: k, label, runs, mean top-1; overtakes the demo's best template (0.92551) at k = 4
FEWSHOT = {"num_classes": 6, "C": 3.162278,
           "curve": [{"k": k, "label": label, "runs": runs, "mean_top1": mean, "std_top1": 0.01,
                      "min_top1": mean - 0.02, "max_top1": mean + 0.02, "top1_low": mean - 0.015,
                      "top1_high": mean + 0.015} for k, label, runs, mean in CURVE]}
INTERVALS = {"top1_low": 0.4, "top1_high": 0.95, "macro_f1_low": 0.4, "macro_f1_high": 0.95}
VERSUS = {"a_only": 3, "b_only": 9, "p_value": 0.146, "verdict": "not distinguishable at 980 test images (p = 0.15)"}
PAIRED = {"num_test_images": 980,
          "probe_vs_zeroshot": {"a_only": 30, "b_only": 10, "p_value": 0.0022, "verdict": "better, p = 0.0022"},
          "logreg_vs_zeroshot": {"a_only": 25, "b_only": 12, "p_value": 0.047, "verdict": "better, p = 0.047"},
          "dot_vs_cosine": {"a_only": 13, "b_only": 28, "p_value": 0.027533, "verdict": "worse, p = 0.028"}}
ENSEMBLES = {"clip_80": {"num_templates": 80, "source": "clip_study/assets/clip_imagenet_templates.txt", "top1": 0.9316,
                         "top5": 1.0, "macro_f1": 0.9301, "mean_per_class_recall": 0.9316, "choice_top1": 0.9,
                         **INTERVALS, "vs_chosen": VERSUS},
             "class_prompts": {"num_templates": None, "source": "prompts.json", "top1": 0.5, "top5": 0.9,
                               "macro_f1": 0.45, "mean_per_class_recall": 0.5, "choice_top1": 0.5, **INTERVALS,
                               "vs_chosen": VERSUS}}


def confusion(correct: list[int], extra: list[dict] = ()) -> list[dict]:
    rows = [{"actual": name, "predicted": name if i < right else CLASSES[(c + 1) % len(CLASSES)]}
            for c, (name, right) in enumerate(zip(CLASSES, correct)) for i in range(4)]
    return rows + list(extra)


PROBE_CORRECT = [4, 4, 3, 4, 3, 4]
# "ghost" is only ever predicted, never an actual class: it joins the class list but gets no accuracy row
CONFUSION = {"zeroshot": confusion(CORRECT), "probe": confusion(PROBE_CORRECT),
             "logreg": confusion([4, 4, 4, 3, 3, 4], [{"actual": "red square", "predicted": "ghost"}])}


def write_inputs(folder: Path, optional: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in REAL:
        shutil.copy(DEMO / f"{name}.json", folder / f"{name}.json")
    if optional:
        zeroshot = json.loads((folder / "zeroshot.json").read_text())
        (folder / "zeroshot.json").write_text(json.dumps({**zeroshot, "ensembles": ENSEMBLES}))
        extra = {"logreg": LOGREG, "logreg_sweep": SWEEP, "fewshot": FEWSHOT, "paired": PAIRED,
                 **{f"confusion_{key}": rows for key, rows in CONFUSION.items()}}
        for name, data in extra.items():
            (folder / f"{name}.json").write_text(json.dumps(data))
    else:
        (folder / "heldout.json").unlink()
    return folder


def run_report(folder: Path) -> str:
    report.main(["--metrics-dir", str(folder), "--out", str(folder / "report.md"), "--figures", str(folder / "figures"),
                 "--per-class", str(folder / "per_class.json")])
    return (folder / "report.md").read_text()


def figure_paths(text: str, folder: Path) -> list[Path]:
    return [folder / path for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)]


def test_report_with_every_input(tmp_path):
    folder = write_inputs(tmp_path / "metrics")
    text = run_report(folder)

    figures = figure_paths(text, folder)
    assert {p.name for p in figures} == {f"{name}.png" for name in
                                         ("prompts", "similarity", "probe_curve", "logreg_sweep", "fewshot",
                                          "reliability", "confusion", "per_class")}
    for path in figures:
        assert path.parent == folder / "figures"  # referenced as figures/NAME.png, beside the report
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 0 and image.height > 0
            assert "Software" not in image.info  # no matplotlib version in the bytes

    zeroshot = json.loads((DEMO / "zeroshot.json").read_text())
    probe = json.loads((DEMO / "probe.json").read_text())
    headline = text.split("## 2.")[0]
    for value in (zeroshot["best_top1"], probe["top1"], probe["macro_f1"], probe["final"]["top1"], LOGREG["top1"],
                  LOGREG["macro_f1"], json.loads((DEMO / "similarity.json").read_text())["dot"]["top1"]):
        assert f"{value:.4f}" in headline
    # every score with its interval, and the paired verdicts against zero-shot
    low, high = zeroshot["best_top1_low"], zeroshot["best_top1_high"]
    assert f"{zeroshot['best_top1']:.4f} [{low:.4f}, {high:.4f}]" in headline
    assert f"{probe['top1']:.4f} [{probe['top1_low']:.4f}, {probe['top1_high']:.4f}]" in headline
    assert "| better, p = 0.0022 |" in headline and "| better, p = 0.047 |" in headline
    assert f"epoch {probe['chosen_epoch']} chosen on {probe['chosen_on']}" in headline
    for key, result in zeroshot["templates"].items():  # each template against the chosen one
        assert (result["vs_chosen"]["verdict"] if result["vs_chosen"] else "chosen") in text.split("## 3.")[0]
    assert "| 0.9316 [0.4000, 0.9500] |" in text  # clip_80's interval in the prompts table
    calibration = text.split("## 6. Calibration")[1].split("## 7.")[0]
    z = zeroshot["calibration"]
    assert f"| zero-shot | {z['temperature']:.4f} | {z['before']['ece']:.4f} | {z['after']['ece']:.4f} |" in calibration
    assert "| logreg probe | 0.8000 | 0.0512 | 0.0123 |" in calibration and "reliability.png" in calibration
    assert f"chance top-1 = 1/49 = {zeroshot['chance_top1']:.4f}" in headline
    assert "the probe overtakes zero-shot at 4 labelled images per class (24 in all)" in text
    assert "`class_prompts (per-class prompts)`" in text and "49 classes x 1 prompt(s)" in text
    assert "Not measured" not in text
    held_out = json.loads((DEMO / "heldout.json").read_text())["templates"]["a_picture_of_a"]["held_out_top1"]
    assert "## 8. Held-out combinations" in text and f"{held_out:.4f}" in text  # a_picture_of_a on held-out classes
    assert f"{json.loads((DEMO / 'similarity.json').read_text())['dot_predictions_vs_text_norm_corr']:.4f}" in text

    # per-class accuracy by hand: right images / images of the class; "ghost" (never actual) has no row
    per_class = json.loads((folder / "per_class.json").read_text())
    assert [row["class"] for row in per_class] == sorted(CLASSES)
    by_hand = {key: {name: sum(r["actual"] == r["predicted"] == name for r in rows)
                     / sum(r["actual"] == name for r in rows) for name in CLASSES}
               for key, rows in CONFUSION.items()}
    for row in per_class:
        assert {key: row[key] for key in CONFUSION} == {key: by_hand[key][row["class"]] for key in CONFUSION}
    assert by_hand["zeroshot"]["green star"] == 0.25 and by_hand["logreg"]["red square"] == 0.6  # 1/4, 3/5
    # the worst zero-shot class leads the per-class table; its most confused pair (3 mistakes) leads the pairs
    assert text.index("| green star | white cross | 3 |") < text.index("| red square | green star | 2 |")
    assert "| blue circle (held out) | 1.0000 | 1.0000 | 1.0000 |" in text  # held out in the demo's heldout.json


@pytest.mark.parametrize("model", ["clip", "siglip"])
def test_the_report_of_the_demos_committed_metrics_is_the_committed_report(tmp_path, model):
    """The report stage's reading of every metrics file, on the demo's: the same markdown and per-class file."""
    committed = DEMO.parent.parent / model / "shapes"
    folder = tmp_path / "metrics"
    folder.mkdir()
    for path in committed.glob("*.json"):
        if path.name != "per_class.json":  # the report's own output
            shutil.copy(path, folder / path.name)
    assert run_report(folder) == (committed / "report.md").read_text()
    assert (folder / "per_class.json").read_bytes() == (committed / "per_class.json").read_bytes()


def test_report_is_deterministic(tmp_path):
    folder = write_inputs(tmp_path / "metrics")
    run_report(folder)
    outputs = sorted([folder / "report.md", folder / "per_class.json", *(folder / "figures").glob("*.png")])
    first = {path: path.read_bytes() for path in outputs}
    run_report(folder)
    assert {path: path.read_bytes() for path in outputs} == first


def test_missing_optional_inputs_name_their_stage(tmp_path):
    folder = write_inputs(tmp_path / "metrics")
    run_report(folder)
    for name in ("logreg", "logreg_sweep", "fewshot", "heldout", "confusion_zeroshot", "confusion_probe",
                 "confusion_logreg", "paired"):
        (folder / f"{name}.json").unlink()
    zeroshot = json.loads((folder / "zeroshot.json").read_text())
    del zeroshot["ensembles"]
    (folder / "zeroshot.json").write_text(json.dumps(zeroshot))

    text = run_report(folder)
    assert "`logreg.json` is missing; the logreg stage writes it" in text
    assert "`fewshot.json` is missing; the fewshot stage writes it" in text
    assert "`heldout.json` is missing; the heldout stage of the offline demo writes it" in text
    assert "`confusion_zeroshot.json` is missing; the zeroshot stage writes it" in text
    assert "`confusion_probe.json` is missing; the probe stage writes it" in text
    assert "`paired.json` is missing; the summary stage writes it" in text
    assert "No prompt ensembles" in text
    assert {p.name for p in figure_paths(text, folder)} == {"prompts.png", "similarity.png", "probe_curve.png",
                                                             "reliability.png"}
    assert sorted(p.name for p in (folder / "figures").glob("*.png")) == [  # stale figures removed
        "probe_curve.png", "prompts.png", "reliability.png", "similarity.png"]
    assert json.loads((folder / "per_class.json").read_text()) == []


def test_probe_that_never_overtakes(tmp_path):
    folder = write_inputs(tmp_path / "metrics")
    curve = [{**row, "mean_top1": 0.9} for row in FEWSHOT["curve"]]
    (folder / "fewshot.json").write_text(json.dumps({**FEWSHOT, "curve": curve}))
    text = run_report(folder)
    assert "the probe does not overtake zero-shot at any k measured, not even with all 3920 labelled images" in text


def demo_report(tmp_path: Path, model: str) -> str:
    """The report of one of the demo's models, from its committed metrics files."""
    folder = tmp_path / model
    folder.mkdir()
    for path in (DEMO.parent.parent / model / "shapes").glob("*.json"):
        shutil.copy(path, folder / path.name)
    return run_report(folder)


def test_a_probe_overtaking_zero_shot_only_with_every_labelled_image_is_said_so(tmp_path):
    """The demo's SigLIP: the few-shot probe beats zero-shot only at the curve's "all" point, k = 80, every labelled
    image of each class; CLIP's beats it at k = 16, a number of labels one could choose to collect."""
    siglip, clip = demo_report(tmp_path, "siglip"), demo_report(tmp_path, "clip")
    few_shot, choice = siglip.split("## 5. Few-shot")[1].split("## 6.")[0], siglip.split("## 9.")[1]
    for section in (few_shot, choice):
        assert "overtakes zero-shot only with all 80 labelled images per class (3920 in all)" in section
    assert "at 80" not in siglip and "k = 80" not in siglip
    assert "the probe overtakes zero-shot at 16 labelled images per class (784 in all)." in clip
    assert "the few-shot probe overtakes zero-shot at 16 labelled images per class (784 in all)." in clip
    assert "only with all" not in clip


def test_missing_required_input_is_one_line_error(tmp_path):
    folder = write_inputs(tmp_path / "metrics", optional=False)
    (folder / "similarity.json").unlink()
    rebuild = "rebuild it with `dvc repro --force --single-item similarity`"
    with pytest.raises(UserError, match=f"similarity.json: not found; {rebuild}"):
        run_report(folder)


@pytest.mark.parametrize("model", ["clip", "siglip"])
def test_the_reliability_diagrams_show_how_many_test_images_each_bin_holds(tmp_path, model):
    """Each diagram's strip counts every test image once per line: the bins' counts sum to the test images."""
    results = load_model_results(DEMO.parent.parent / model / "shapes")
    panels = reliability_panels(results)
    assert [panel.title for panel in panels] == ["zero-shot", "probe", "logreg probe"]
    for panel in panels:
        assert panel.series[0].label.startswith("as predicted") and panel.series[1].label.startswith("temperature")
        for series in panel.series:
            assert sum(series.count) == results.zeroshot.num_test_images == 980
            assert all(count > 0 for count in series.count)  # the non-empty bins only
            assert len(series.count) == len(series.confidence) == len(series.accuracy) == len(series.lower)
    if model == "clip":  # the committed zero-shot bins, as predicted: most images are confident and right
        assert panels[0].series[0].count == [4, 10, 22, 37, 36, 52, 48, 78, 154, 539]
    plot_reliability(results, tmp_path)
    with Image.open(tmp_path / "reliability.png") as image:
        assert image.format == "PNG"


def test_a_probe_below_zero_shot_still_improving_at_its_last_epoch_is_said_to_need_more_training(tmp_path):
    """The committed demo probe converged (epoch 46 of 50 chosen on validation): no sentence. The same probe
    stopped at its best validation epoch, the last, below zero-shot: the sentence naming the params to change."""
    folder = write_inputs(tmp_path / "metrics")
    sentence = "The probe ends below zero-shot while still improving"
    assert sentence not in run_report(folder)
    probe = json.loads((folder / "probe.json").read_text())
    (folder / "probe.json").write_text(json.dumps({**probe, "epochs": 10, "chosen_epoch": 10, "top1": 0.613265}))
    linear_probe = run_report(folder).split("## 4. Linear probe")[1].split("## 5.")[0]
    assert f"{sentence}: its validation top-1 is highest at its last epoch (10 of 10)" in linear_probe
    assert "raise probe.epochs or probe.lr and rerun." in linear_probe
