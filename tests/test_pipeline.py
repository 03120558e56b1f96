"""End to end: `dvc repro` in a temporary git repo, then which stages a param change reruns."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALL_STAGES = {"fetch", "extract", "zeroshot", "similarity", "probe", "summary"}


def sh(repo: Path, *args: str) -> str:
    """Run a command in ``repo`` with the venv's python first on PATH; return its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def repro(repo: Path) -> set[str]:
    """`dvc repro`; the names of the stages that ran."""
    return set(re.findall(r"Running stage '([^']+)'", sh(repo, sys.executable, "-m", "dvc", "repro")))


def set_params(repo: Path, **changes) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def metrics(repo: Path, name: str):
    return json.loads((repo / "metrics" / name).read_text())


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_clip_dir, shape_folder) -> Path:
    """The project's pipeline in a fresh git + DVC repo, params pointing at the tiny model and shapes."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    set_params(repo, data__dataset=str(shape_folder), data__classes=6, data__test_size=0.5,
               model__name=str(tiny_clip_dir), model__device="cpu", extract__batch_size=5,
               probe__epochs=3, probe__lr=0.01, probe__batch_size=4)
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline")
    return repo


def test_repro_runs_every_stage_and_writes_sane_metrics(repo):
    assert repro(repo) == ALL_STAGES
    zeroshot = metrics(repo, "zeroshot.json")
    assert zeroshot["num_classes"] == 6 and zeroshot["num_test_images"] == 12  # 6 classes x 4 images x 0.5
    assert zeroshot["chance_top1"] == pytest.approx(1 / 6, abs=1e-6)
    assert len(zeroshot["templates"]) == 6
    for result in zeroshot["templates"].values():
        assert 0 <= result["top1"] <= result["top5"] <= 1 and 0 <= result["macro_f1"] <= 1
    assert zeroshot["best_top1"] == max(r["top1"] for r in zeroshot["templates"].values())
    assert zeroshot["templates"][zeroshot["best"]]["template"] == zeroshot["best_template"]

    similarity = metrics(repo, "similarity.json")
    assert similarity["template"] == zeroshot["best"]
    assert similarity["cosine"]["top1"] == zeroshot["best_top1"]  # the same classifier, recomputed
    norms = similarity["text_norms"]
    assert 0 < norms["min"] <= norms["mean"] <= norms["max"] and norms["std"] >= 0

    probe, curve = metrics(repo, "probe.json"), metrics(repo, "probe_curve.json")
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    assert probe["top1"] == curve[-1]["top1"] and probe["best_top1"] == max(r["top1"] for r in curve)
    assert probe["num_train_images"] == 12 and probe["num_classes"] == 6

    summary = metrics(repo, "summary.json")
    assert summary["zeroshot"]["top1"] == zeroshot["best_top1"] and summary["probe"]["top1"] == probe["top1"]
    assert summary["probe_minus_zeroshot_top1"] == pytest.approx(probe["top1"] - zeroshot["best_top1"], abs=1e-6)
    assert "| zero-shot, cosine |" in (repo / "metrics" / "summary.md").read_text()
    assert repro(repo) == set()  # nothing changed, nothing reruns


def test_a_template_change_reruns_only_the_text_side(repo):
    set_params(repo, zeroshot__templates=["a photo of a {}", "a drawing of a {}"])
    assert repro(repo) == {"zeroshot", "similarity", "summary"}
    assert set(metrics(repo, "zeroshot.json")["templates"]) == {"a_photo_of_a", "a_drawing_of_a"}


def test_a_probe_change_reruns_only_probe_and_summary(repo):
    set_params(repo, probe__epochs=2)
    assert repro(repo) == {"probe", "summary"}
    assert len(metrics(repo, "probe_curve.json")) == 2


def test_a_model_change_reruns_from_extract(repo, other_clip_dir):
    set_params(repo, model__name=str(other_clip_dir))
    assert repro(repo) == ALL_STAGES - {"fetch"}


def test_prompt_sweep_with_dvc_exp_run(repo):
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "state")
    out = sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", 'zeroshot.templates=["a {}","an image of a {}"]')
    assert "Running stage 'zeroshot'" in out and "Running stage 'extract'" not in out
    shown = sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--json")
    assert "an_image_of_a" in shown and "a_photo_of_a" in shown  # the experiment's and the baseline's keys
    diff = sh(repo, sys.executable, "-m", "dvc", "metrics", "diff")
    assert "templates.an_image_of_a.top1" in diff
