"""The offline demo, end to end: `cd demo && dvc repro` pretrains a small CLIP on generated shapes and
runs the study on it. Its numbers must show what the real study shows."""

import ast
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.dvc_repo import DEMO_FILES, ROOT, commit, metrics, per_model, per_pair, project_copy, repro, run, sh

pytestmark = pytest.mark.slow  # runs the whole demo with dvc repro (pretraining included)

DEMO_MODELS = ("clip", "siglip")  # demo/params.yaml: the same small model trained with either loss
DEMO_DATASETS = ("shapes", "shape_only")  # the 49 colour-shape classes; the 7 shapes alone
PER_PAIR = ("extract", "zeroshot", "similarity", "heldout", "probe", "logreg", "fewshot", "zsinit", "wiseft", "summary",
            "report")
DEMO_SHIFTS = {"outline": 49, "noisy": 49, "small": 21}  # the shift sets of shapes, and the classes each covers
DEMO_CAPTIONS = {"shape_captions": (196, 980)}  # the caption dataset: its images and captions (4 x 49, 5 each)
DEMO_STAGES = {"check", "generate", *per_model(DEMO_MODELS, "pretrain"), *(f"fetch@{d}" for d in DEMO_DATASETS),
               *per_pair(DEMO_MODELS, *PER_PAIR, datasets=DEMO_DATASETS), *(f"fetch_shift@{s}" for s in DEMO_SHIFTS),
               *per_pair(DEMO_MODELS, "extract_shift", "shift", datasets=DEMO_SHIFTS),
               *(f"fetch_captions@{c}" for c in DEMO_CAPTIONS),
               *per_pair(DEMO_MODELS, "extract_captions", "embed_captions", "retrieval", datasets=DEMO_CAPTIONS),
               "leaderboard"}
LONG_TEMPLATE = "beneath_the_fading_sunset_the_etc"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    # as a clone: the main pipeline there too, never run (nobody can offline)
    repo = project_copy(tmp_path_factory.mktemp("demo"), "dvc.yaml", "params.yaml", *DEMO_FILES)
    return repo, repro(repo / "demo")


def demo_metrics(demo, name, model="clip", dataset="shapes"):
    """A metrics file of one of the demo's pairs (``model=None``: one of the whole study's)."""
    return metrics(demo[0], name, folder="demo/metrics", model=model, dataset=dataset)


def test_demo_runs_every_stage(demo):
    assert demo[1] == DEMO_STAGES


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_zero_shot_recognises_seen_and_held_out_combinations(demo, model):
    heldout = demo_metrics(demo, "heldout.json", model)
    chance = heldout["chance_top1"]
    assert heldout["num_classes"] == 49 and len(heldout["held_out_classes"]) == 7
    photo = heldout["templates"]["a_photo_of_a"]
    assert photo["seen_top1"] >= 10 * chance
    assert photo["held_out_top1"] >= 5 * chance  # classes never captioned in pretraining


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_prompts_matter_like_for_real_clip(demo, model):
    zeroshot = demo_metrics(demo, "zeroshot.json", model)
    assert zeroshot["best_top1"] >= zeroshot["templates"][LONG_TEMPLATE]["top1"] + 0.05


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_the_probe_at_least_matches_zero_shot(demo, model):
    assert demo_metrics(demo, "probe.json", model)["top1"] >= demo_metrics(demo, "zeroshot.json", model)[
        "best_top1"] - 0.01


def test_cosine_is_at_least_as_good_as_the_dot_product(demo):
    similarity = demo_metrics(demo, "similarity.json")
    assert similarity["cosine"]["top1"] >= similarity["dot"]["top1"]


def structure(value):
    """Nested keys of a metrics file, with template keys collapsed (they depend on the params)."""
    if isinstance(value, dict):
        return {("<template>" if isinstance(v, dict) and "template" in v else k): structure(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [structure(value[0])] if value else []
    return type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool) else "number"


@pytest.mark.parametrize("name", ["zeroshot.json", "similarity.json", "probe.json", "probe_curve.json",
                                  "logreg.json", "logreg_sweep.json", "fewshot.json", "wiseft.json", "summary.json",
                                  "per_class.json"])
def test_demo_metrics_have_the_main_pipelines_structure(demo, pipeline_run, name):
    demo_side, main_side = demo_metrics(demo, name), metrics(pipeline_run[0], name, model="clip")
    if name == "summary.json":  # keys under the model's and the dataset's names
        demo_side, main_side = demo_side["clip"]["shapes"], main_side["clip"]["shapes"]
        assert set(demo_side.pop("heldout")) == {"seen", "held_out"}  # the demo's own
        for side in (demo_side, main_side):  # one entry per k, and k depends on the images per class
            assert list(side.pop("fewshot"))[-1] == "all" and list(side.pop("zsinit"))[-1] == "all"
    assert structure(demo_side) == structure(main_side)


@pytest.mark.parametrize("shift", DEMO_SHIFTS)
@pytest.mark.parametrize("model", DEMO_MODELS)
def test_every_shift_set_is_scored_with_the_heads_fitted_on_shapes(demo, model, shift):
    """The shift stage applies the source's own classifiers: their source top-1 is the source stages' test top-1,
    the chosen zero-shot classifier is zeroshot's, and the small set's logits are restricted to its 21 classes."""
    result = demo_metrics(demo, "shift.json", model, shift)
    rows = {row["name"]: row for row in result["classifiers"]}
    zeroshot = demo_metrics(demo, "zeroshot.json", model)
    assert result["source"] == "shapes" and result["reference"] == f"zeroshot/{zeroshot['best']}"
    source = {name: rows[name]["source"]["value"] for name in (result["reference"], "logreg", "probe")}
    assert source == pytest.approx({result["reference"]: zeroshot["best_top1"],  # both rounded to 6 decimals
                                    "logreg": demo_metrics(demo, "logreg.json", model)["top1"],
                                    "probe": demo_metrics(demo, "probe.json", model)["top1"]}, abs=1e-6)
    assert result["num_shift_classes"] == result["matched_source_classes"] == DEMO_SHIFTS[shift]
    for row in rows.values():
        assert row["drop"]["value"] == pytest.approx(row["source"]["value"] - row["shift"]["value"], abs=2e-6)
    with Image.open(demo[0] / "demo" / "metrics" / "models" / model / shift / "figures" / "robustness.png") as image:
        assert image.format == "PNG" and image.width > 100


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_retrieval_finds_each_images_captions_well_above_chance_and_its_ranks_give_its_recall(demo, model):
    """Both ways on the caption dataset: recall@k from the ranks kept for the leaderboard, the counts of the set,
    and far above chance (a model that knew nothing: k of 196 images, about 5k of 980 captions)."""
    import numpy as np

    from clip_study.evaluation.retrieval import Ranks

    (captions, (images, texts)), = DEMO_CAPTIONS.items()
    result = demo_metrics(demo, "retrieval.json", model, captions)
    ranks = Ranks.load(demo[0] / "demo" / "data" / "predictions" / model / f"{captions}.npz")
    assert (result["images"], result["captions"]) == (images, texts) == (len(ranks.image_to_text), len(ranks.text_to_image))
    for direction, found in (("image_to_text", ranks.image_to_text), ("text_to_image", ranks.text_to_image)):
        recall = result[direction]["recall"]
        assert list(recall) == ["recall@1", "recall@5", "recall@10"]
        for k in (1, 5, 10):
            assert recall[f"recall@{k}"]["value"] == pytest.approx(float(np.mean(found <= k)), abs=1e-6)
        assert recall["recall@10"]["value"] >= 0.5 > 10 * 5 / texts  # chance at 10: about 0.05 image to text
    with Image.open(demo[0] / "demo" / "metrics" / "models" / model / captions / "figures" / "retrieval.png") as image:
        assert image.format == "PNG" and image.width > 300


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_the_report_and_every_figure_it_references_exist(demo, model):
    folder = demo[0] / "demo" / "metrics" / "models" / model / "shapes"
    report = (folder / "report.md").read_text()
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", report)
    assert len(figures) >= 7
    for figure in figures:
        with Image.open(folder / figure) as image:
            assert image.format == "PNG" and image.width > 100
    zeroshot = demo_metrics(demo, "zeroshot.json", model)
    assert f"{zeroshot['best_top1']:.4f}" in report


def test_the_front_page_is_a_leaderboard_of_two_models_on_two_datasets(demo):
    folder = demo[0] / "demo" / "metrics"
    board, report = demo_metrics(demo, "leaderboard.json", None), (folder / "report.md").read_text()
    assert [row["model"] for row in board["models"]] == list(DEMO_MODELS) and list(board["datasets"]) == list(
        DEMO_DATASETS)
    assert [row["family"] for row in board["models"]] == ["hf_clip", "hf_siglip"]
    for row in board["models"]:
        for dataset in DEMO_DATASETS:
            pair = row["datasets"][dataset]
            assert pair["zeroshot"]["top1"] == demo_metrics(demo, "zeroshot.json", row["model"], dataset)["best_top1"]
            assert pair["fewshot_16"]["top1"] == next(point["mean_top1"] for point in demo_metrics(
                demo, "fewshot.json", row["model"], dataset)["curve"] if point["label"] == "16")
            assert f"(models/{row['model']}/{dataset}/report.md)" in report
        across = row["across_datasets"]["zeroshot"]
        assert across["mean_top1_low"] <= across["mean_top1"] <= across["mean_top1_high"]
        assert across["mean_top1"] == pytest.approx(
            sum(row["datasets"][d]["zeroshot"]["top1"] for d in DEMO_DATASETS) / 2, abs=1e-6)
    with Image.open(folder / "figures" / "heatmap.png") as image:
        assert image.format == "PNG"
    notes = (ROOT / "demo" / "notes.md").read_text().strip()  # what the SigLIP gap is made of, measured
    assert f"## Reading these numbers\n\n{notes}\n" in report


def test_the_second_dataset_has_its_own_class_space_and_no_held_out_class(demo):
    for model in DEMO_MODELS:
        heldout = demo_metrics(demo, "heldout.json", model, "shape_only")
        assert heldout["num_classes"] == 7 and heldout["held_out_classes"] == [] and heldout["templates"] == {}
        assert "heldout" not in demo_metrics(demo, "summary.json", model, "shape_only")[model]["shape_only"]


def test_evaluation_depth_metrics_are_in_the_demo(demo):
    zeroshot = demo_metrics(demo, "zeroshot.json")
    assert set(zeroshot["ensembles"]) == {"clip_80", "clip_7"}
    assert zeroshot["ensembles"]["clip_80"]["num_templates"] == 80
    for result in [*zeroshot["templates"].values(), *zeroshot["ensembles"].values()]:
        assert {"top1", "top5", "macro_f1", "mean_per_class_recall"} <= set(result)
    logreg = demo_metrics(demo, "logreg.json")
    sweep = demo_metrics(demo, "logreg_sweep.json")
    assert logreg["C"] in [row["C"] for row in sweep]
    assert logreg["val_top1"] == max(row["val_top1"] for row in sweep)
    fewshot = demo_metrics(demo, "fewshot.json")
    assert [row["label"] for row in fewshot["curve"]] == ["1", "2", "4", "8", "16", "all"]
    means = [row["mean_top1"] for row in fewshot["curve"]]
    assert means[0] < means[-1]  # more labels help
    assert fewshot["curve"][-1]["mean_top1"] == logreg["top1"]  # "all" is the logreg probe itself
    summary = demo_metrics(demo, "summary.json")["clip"]["shapes"]
    assert summary["fewshot_overtakes_at_k"] in [row["k"] for row in fewshot["curve"]] + [None]
    assert len(demo_metrics(demo, "confusion_zeroshot.json")) == zeroshot["num_test_images"]


def python_example() -> str:
    """The first python block of docs/python.md, the guide to using the library from Python."""
    return re.search(r"```python\n(.*?)```", (ROOT / "docs" / "python.md").read_text(), re.DOTALL).group(1)


def test_the_notebook_example_of_the_docs_reproduces_the_pipelines_zero_shot(demo):
    """Run as written, from the repository root once the demo has run: its numbers are the
    zeroshot stage's (the same features and class weights, computed again through the public API)."""
    done = subprocess.run([sys.executable, "-c", python_example()], cwd=demo[0], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    zeroshot = demo_metrics(demo, "zeroshot.json")
    expected = {"a photo of a {}": zeroshot["templates"]["a_photo_of_a"],
                "CLIP's 7 templates": zeroshot["ensembles"]["clip_7"]}
    assert set(printed) == set(expected)
    for name, line in printed.items():
        got = ast.literal_eval(line)
        for key in ("top1", "top5", "macro_f1", "mean_per_class_recall"):
            assert got[key] == pytest.approx(expected[name][key], abs=1.5 / zeroshot["num_test_images"]), (name, key)


def documented_commands(guide: str, heading: str) -> list[list[str]]:
    """The commands of the bash blocks under ``## heading`` of ``guide``, in order, each split into words
    (``a && b`` as two commands; ``cd demo`` left out: the caller runs them in the demo's folder)."""
    section = guide.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words:
                command, words = (words[:words.index("&&")], words[words.index("&&") + 1:]) if "&&" in words \
                    else (words, [])
                if command != ["cd", "demo"]:
                    commands.append(command)
    return commands


def as_run(words: list[str]) -> list[str]:
    """A documented command as the tests run it: ``dvc`` through this interpreter."""
    return [sys.executable, "-m", "dvc", *words[1:]] if words[0] == "dvc" else words


def file_digests(folder: Path) -> dict[str, str]:
    """Every file the demo's run made (outputs, metrics, dvc.lock) -> its sha256, but the measured speed."""
    files = [folder / "dvc.lock", *(path for top in ("data", "metrics") for path in (folder / top).rglob("*")
                                    if path.is_file() and "speed" not in path.relative_to(folder).parts)]
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def test_the_documented_sweeps_and_way_back_keep_every_output(demo, tmp_path):
    """docs/comparing.md's commands as written: a sweep, its table, the way back, a template sweep and its
    diff, `exp apply`, the way back again. The last commit's dvc.lock is made to name checkpoints this
    machine never held, as a commit made on another CPU does: the way back must still leave every output, and
    give the files of the run before the sweeps byte for byte."""
    repo = tmp_path / "clone"
    shutil.copytree(demo[0], repo, symlinks=True)
    folder = repo / "demo"
    ours = (folder / "dvc.lock").read_text()
    foreign = ours
    for checkpoint in re.findall(r"path: data/checkpoints/\w+\n\s+hash: md5\n\s+md5: (\w+)\.dir", ours):
        foreign = foreign.replace(checkpoint, hashlib.md5(checkpoint.encode()).hexdigest())
    assert foreign != ours
    (folder / "dvc.lock").write_text(foreign)
    commit(repo, "the demo's results as another machine made them")
    (folder / "dvc.lock").write_text(ours)  # this machine's run, uncommitted, as after a fresh clone's repro
    before = file_digests(folder)

    guide = (ROOT / "docs" / "comparing.md").read_text()
    sweeps, way_back = documented_commands(guide, "Sweeps: `dvc exp run`"), documented_commands(guide, "The way back")
    assert [words[:3] for words in sweeps] == [["dvc", "exp", "run"], ["dvc", "exp", "show"], ["git", "checkout", "--"],
                                               ["dvc", "repro"], ["dvc", "exp", "run"], ["dvc", "metrics", "diff"]]
    assert way_back == [["git", "checkout", "--", "params.yaml"], ["dvc", "repro"]] == sweeps[2:4]
    printed = [sh(folder, *as_run(words), env={"COLUMNS": "400"}) for words in sweeps]

    ran, table, diff = printed[0], printed[1], printed[5]
    assert "Running stage 'probe@clip-shapes'" in ran and "Running stage 'extract" not in ran  # seconds, not a rerun
    assert all(f"{model}.{dataset}.probe.top1" in table for model in DEMO_MODELS for dataset in DEMO_DATASETS)
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 150  # fits a 150-column terminal
    assert "Running stage 'probe@clip-shapes'" in printed[3] and "Running stage 'pretrain" not in printed[3]
    assert re.search(r"clip\.shapes\.zeroshot\.a_sketch_of_a\.top1\b", diff) and "clip.shapes.zsinit" in diff
    assert "siglip" not in diff and max(len(line) for line in diff.splitlines()) <= 150  # one pair's, as documented
    assert not re.search(r"\.probe\.top1\b", diff), diff  # the template sweep did not stack on probe.lr
    probe_sweep = re.search(r"Ran experiment\(s\): (\S+)", ran).group(1)

    sh(folder, *as_run(["dvc", "exp", "apply", probe_sweep]))
    assert "lr: 0.01" in (folder / "params.yaml").read_text()
    plots = json.loads(sh(folder, sys.executable, "-m", "dvc", "plots", "show", "--json"))["data"]
    stages = yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]
    pairs = {"dataset": len(DEMO_MODELS) * len(DEMO_DATASETS), "shift": len(DEMO_MODELS) * len(DEMO_SHIFTS)}
    declared = {(name, axis): len(stage["plots"]) for name, stage in stages.items() if stage.get("plots")
                for axis in pairs if axis in stage.get("matrix", {})}
    assert {stage for stage, _ in declared} == {stage for stage, body in stages.items() if body.get("plots")}
    assert len(plots) == sum(count * pairs[axis] for (_, axis), count in declared.items()) > 0  # each drawn once
    for words in way_back:
        sh(folder, *as_run(words))
    assert file_digests(folder) == before  # every output present, each as the run before the sweeps made it
    assert all(any((folder / "data" / "checkpoints" / model).iterdir()) for model in DEMO_MODELS)

    params = folder / "params.yaml"
    params.write_text(params.read_text().replace("  epochs: 50", "  epoch: 50"))
    done = run(folder, sys.executable, "-m", "dvc", "repro")
    assert done.returncode != 0 and "error: params.yaml: probe.epoch: unknown key; did you mean probe.epochs?" \
        in done.stderr and "are missing" not in done.stderr, done.stderr  # the project's message, not DVC's
    assert (folder / "metrics" / "models" / "clip" / "shapes" / "probe.json").is_file()  # checked before any output was removed

    # why the docs do not give `git checkout -- . && dvc checkout`: with the foreign commit, it deletes work
    sh(repo, "git", "checkout", "--", ".")
    done = run(folder, sys.executable, "-m", "dvc", "checkout")
    assert done.returncode != 0 and "Checkout failed" in done.stderr + done.stdout
    assert not (folder / "data" / "checkpoints" / "clip").is_dir() or not any(
        (folder / "data" / "checkpoints" / "clip").iterdir())
