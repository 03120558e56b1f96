"""Running DVC in a throwaway copy of the project: a fresh git + DVC repo with the library and the stages."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_MODELS = ("clip", "siglip")  # the models of the pipeline_run fixture (conftest.py)
PIPELINE_DATASET = "shapes"  # its one dataset
DEMO_FILES = ("demo/dvc.yaml", "demo/params.yaml", "demo/notes.md", "demo/small_classes.tsv")
"""What a copy of the demo needs beside the library: its pipeline, params and the files they name."""


def run(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command in ``repo`` with the venv's python first on PATH (the stages' `python`), offline."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", **(env or {})}
    return subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)


def sh(repo: Path, *args: str, env: dict | None = None) -> str:
    """``run`` a command that must succeed; its output."""
    done = run(repo, *args, env=env)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def repro(repo: Path, *targets: str) -> set[str]:
    """`dvc repro [targets]`; the names of the stages that ran (a per-model one as extract@clip)."""
    out = sh(repo, sys.executable, "-m", "dvc", "repro", *targets)
    return {name.split(":")[-1] for name in re.findall(r"Running stage '([^']+)'", out)}


def set_params(repo: Path, file: str = "params.yaml", **changes) -> None:
    """Change params: ``section__key=value`` (``models__clip__name=...``: a key of a model), or a whole
    section by its name (``models={...}``)."""
    params = yaml.safe_load((repo / file).read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        target = params
        for part in path:
            target = target[part]
        target[key] = value
    (repo / file).write_text(yaml.safe_dump(params, sort_keys=False))


def metrics(repo: Path, name: str, folder: str = "metrics", model: str | None = None, dataset: str = PIPELINE_DATASET):
    """A metrics file, a (model, dataset) pair's (``metrics/models/<model>/<dataset>/``) when ``model`` is given."""
    return json.loads((repo / folder / (f"models/{model}/{dataset}" if model else "") / name).read_text())


def per_model(models, *stages: str) -> set[str]:
    """DVC's names of per-model stages: ``per_model(["clip"], "pretrain")`` -> {"pretrain@clip"}."""
    return {f"{stage}@{model}" for stage in stages for model in ([models] if isinstance(models, str) else models)}


def per_pair(models, *stages: str, datasets=(PIPELINE_DATASET,)) -> set[str]:
    """DVC's names of per-(model, dataset) stages: ``per_pair(["clip"], "extract")`` -> {"extract@clip-shapes"}."""
    return {f"{name}-{dataset}" for name in per_model(models, *stages) for dataset in datasets}


def project_copy(repo: Path, *files: str) -> Path:
    """The library, the stages, ``files`` and the DVC project (config, .dvcignore) of every folder they are
    in that has one (the root's; the demo's own) copied into ``repo``, then git init + commit."""
    for package in ("clip_study", "stages"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in dict.fromkeys([".", *(str(Path(name).parent) for name in files)]):
        if not (ROOT / folder / ".dvc").is_dir():
            continue
        shutil.copytree(ROOT / folder / ".dvc", repo / folder / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
        files += (str(Path(folder) / ".dvcignore"),)
    for name in (".gitignore", *files):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    sh(repo, "git", "init", "-q")
    commit(repo)
    return repo


def commit(repo: Path, message: str = "state") -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def write_extract_params(path: Path, checkpoint: Path, **extract) -> None:
    """The project's params with ``checkpoint`` as the only model, on the cpu, and ``extract`` settings."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["models"] = {"clip": {"name": str(checkpoint)}}
    params["model"]["device"] = "cpu"
    params["extract"].update(extract)
    path.write_text(yaml.safe_dump(params))


def extract_command(params: Path, subset: Path, out: Path) -> list[str]:
    """The extract stage run by hand on ``subset``."""
    return [sys.executable, "-m", "stages.extract", "--params", str(params), "--subset", str(subset),
            "--out", str(out)]
