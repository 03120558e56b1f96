"""The Ray engine of extraction: byte-identical features to the local engine (library and `dvc repro`),
resuming from the local engine's shards and from a killed run, and one-line errors for a failing shard,
a missing ray and an address where no cluster answers. Skipped where ray is not installed (the `ray`
extra), except the missing-ray error itself."""

import builtins
import json
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from clip_study.data import shards
from clip_study.data.sources import scan_folder
from clip_study.data.subset import read_split, split_indices, write_subset
from clip_study.errors import UserError
from clip_study.models import loading, ray_extraction
from clip_study.models.extraction import extract_features
from tests.dvc_repo import ROOT, commit, extract_command, per_pair, repro, set_params, write_extract_params
from tests.dvc_repo import PIPELINE_MODELS as MODELS

pytestmark = pytest.mark.slow  # starts Ray clusters

try:
    import ray  # noqa: F401
    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install -c constraints.txt -e '.[ray]')")


def write_split_subset(out, shape_folder, repeat=1, test_size=0.5):
    examples = scan_folder(shape_folder).examples * repeat
    classes = sorted({e.class_id for e in examples})
    labels = np.array([classes.index(e.class_id) for e in examples])
    train, test = split_indices(labels, test_size, seed=0)
    write_subset(out, examples, labels, [{"id": c, "name": c} for c in classes], {"train": train, "test": test})
    return out


@pytest.fixture(scope="module")
def subset(tmp_path_factory, shape_folder):
    """49 classes x 4 images: 98 train / 98 test."""
    return write_split_subset(tmp_path_factory.mktemp("ray_subset") / "subset", shape_folder)


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    return loading.load_model(str(tiny_clip_dir), torch.device("cpu")), loading.load_image_processor(str(tiny_clip_dir))


def same_bytes(a, b, name):
    return (a / name).read_bytes() == (b / name).read_bytes()


def splits_of(subset):
    return {split: read_split(subset, split) for split in ("train", "test")}


@needs_ray
class TestInProcessCluster:
    """Library-level runs on one in-process 2-CPU cluster, started once for the class and shut down after."""

    @pytest.fixture(scope="class")
    def cluster(self):
        with ray_extraction.cluster("local", 2, log=lambda message: None) as ray:
            yield ray

    def run(self, cluster, tiny, tiny_clip_dir, subset, out, **settings):
        model, processor = tiny
        options = {"batch_size": 8, "shard_size": 20, "actors": 1, "log": lambda message: None, **settings}
        ray_extraction.extract_features_ray(cluster, model, processor, splits_of(subset), out, str(tiny_clip_dir),
                                            "fp32", options["batch_size"], torch.get_num_threads(),
                                            options["shard_size"], options["actors"], log=options["log"])

    def test_features_are_byte_identical_to_the_local_engine(self, cluster, tiny, tiny_clip_dir, subset, tmp_path):
        model, processor = tiny
        extract_features(model, processor, splits_of(subset), tmp_path / "local", "fp32", batch_size=5, workers=0,
                         shard_size=20, log=lambda message: None)
        self.run(cluster, tiny, tiny_clip_dir, subset, tmp_path / "ray", actors=2)
        for split in ("train", "test"):
            assert same_bytes(tmp_path / "ray", tmp_path / "local", f"{split}.npz")
        assert not (tmp_path / "ray.partial").exists()

    def test_it_resumes_from_the_local_engines_shards(self, cluster, tiny, tiny_clip_dir, subset, tmp_path,
                                                      monkeypatch):
        model, processor = tiny
        with monkeypatch.context() as patch:
            patch.setattr(shards, "remove", lambda folder: None)  # keep the local engine's shard files
            extract_features(model, processor, splits_of(subset), tmp_path / "local", "fp32", batch_size=5,
                             workers=0, shard_size=20, log=lambda message: None)
        work = tmp_path / "features.partial"
        (tmp_path / "local.partial").rename(work)
        for shard in [*sorted(work.glob("train-*.npy"))[2:], *work.glob("test-*.npy")]:
            shard.unlink()  # as if the local run stopped after 2 of its train shards
        assert sorted(path.name[:5] for path in work.iterdir()) == ["train", "train"]
        messages = []
        self.run(cluster, tiny, tiny_clip_dir, subset, tmp_path / "features", actors=1, log=messages.append)
        assert "resuming train: 2 of 5 shards already encoded" in messages
        for split in ("train", "test"):
            assert ((tmp_path / "features" / f"{split}.npz").read_bytes()
                    == (tmp_path / "local" / f"{split}.npz").read_bytes())

    def test_a_failing_shard_is_one_line_naming_it_and_the_finished_shards_stay(self, cluster, tiny, tiny_clip_dir,
                                                                                   shape_folder, tmp_path):
        subset = write_split_subset(tmp_path / "subset", shape_folder)
        paths, _ = read_split(subset, "train")
        damaged = tmp_path / "damaged.png"
        damaged.write_bytes(paths[85].read_bytes()[:40])  # a cut-short PNG at train image 85: shard 80-97
        splits = splits_of(subset)
        splits["train"][0][85] = damaged
        model, processor = tiny
        with pytest.raises(UserError) as failure:
            ray_extraction.extract_features_ray(cluster, model, processor, splits, tmp_path / "features",
                                                str(tiny_clip_dir), "fp32", 8, torch.get_num_threads(), 20, 1,
                                                log=lambda message: None)
        message = str(failure.value)
        assert "\n" not in message
        assert "(train images 80-97) failed on the Ray cluster: image " in message and "damaged.png" in message
        assert "rerun to resume" in message
        # what was written before the failure stopped the stream stays, a prefix of the plan (rows stream in order)
        kept = sorted(path.name[:15] for path in (tmp_path / "features.partial").glob("*.npy"))
        assert kept == [f"train-{start:09d}" for start in range(0, 20 * len(kept), 20)]
        assert not (tmp_path / "features" / "train.npz").exists()


def test_a_missing_ray_is_a_one_line_error(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"^the 'ray' engine needs ray\[data\], which is not installed .*"
                                        r"pip install -c constraints\.txt -e '\.\[ray\]'"):
        ray_extraction.import_ray()


@needs_ray
@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_address_where_no_cluster_answers_is_a_one_line_error(address):
    with pytest.raises(UserError, match=rf"^no Ray cluster answers at '{address}' .*ray start --head") as failure:
        with ray_extraction.cluster(address, 2):
            pass
    assert "\n" not in str(failure.value)






@needs_ray
def test_a_killed_ray_run_resumes_from_its_shards_and_gives_the_uninterrupted_features(tmp_path, tiny_clip_dir,
                                                                                       shape_folder):
    subset = write_split_subset(tmp_path / "subset", shape_folder, repeat=2, test_size=0.25)  # 294 train images
    write_extract_params(tmp_path / "local.yaml", tiny_clip_dir, batch_size=4, shard_size=32, threads=1)
    write_extract_params(tmp_path / "ray.yaml", tiny_clip_dir, batch_size=4, shard_size=32, threads=1, engine="ray",
                 ray_address="local", ray_actors=1)
    done = subprocess.run(extract_command(tmp_path / "local.yaml", subset, tmp_path / "local"), cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    command, work = extract_command(tmp_path / "ray.yaml", subset, tmp_path / "features"), tmp_path / "features.partial"
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while not list(work.glob("train-*.npy")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode != 0, "extraction finished before it could be interrupted"
    kept = sorted(work.glob("train-*.npy"))
    assert 1 <= len(kept) < 10
    assert not (tmp_path / "features" / "train.npz").exists()

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming train: {len(kept)} of 10 shards already encoded" in done.stdout
    assert not work.exists()
    for split in ("train", "test"):
        assert same_bytes(tmp_path / "features", tmp_path / "local", f"{split}.npz")


@needs_ray
def test_the_pipeline_on_ray_gives_the_local_pipelines_features_and_metrics_byte_for_byte(tmp_path, pipeline_run):
    local, _ = pipeline_run
    repo = tmp_path / "repo"
    shutil.copytree(local, repo, symlinks=True)
    set_params(repo, extract__engine="ray", extract__ray_address="local", extract__ray_actors=2)
    commit(repo)
    # the same features: DVC reruns nothing downstream but the leaderboard, whose dependency metrics/models holds
    # extract.json, which names the engine
    assert repro(repo) - {"check", "scan@shapes"} == per_pair(MODELS, "extract") | {"leaderboard"}
    for model in MODELS:  # a CLIP and a SigLIP: each actor loads the model's family
        for split in ("train", "test"):
            assert same_bytes(repo / f"data/models/{model}/shapes/features",
                              local / f"data/models/{model}/shapes/features", f"{split}.npz")
        assert json.loads((repo / f"metrics/models/{model}/shapes/extract.json").read_text())["engine"] == "ray"
    metrics = sorted(path.relative_to(local) for path in (local / "metrics").rglob("*")
                     if path.is_file() and path.name != "extract.json")  # its engine: ray against local
    assert metrics
    for path in metrics:
        assert (repo / path).read_bytes() == (local / path).read_bytes(), path
