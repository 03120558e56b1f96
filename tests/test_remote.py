"""A shared DVC remote lets a team extract features once: a second clone pulls the first one's outputs
(run-cache included) and `dvc repro` encodes nothing. Stage names are matched by prefix only (``extract``,
``extract@<model>``), and metrics are compared file by file, whatever the pipeline's layout."""

import pytest
import shutil
import sys

from tests.dvc_repo import commit, repro, sh

pytestmark = pytest.mark.slow  # runs dvc repro, push and pull between two clones


def test_a_second_clone_pulls_features_and_metrics_from_a_shared_remote_and_extracts_nothing(tmp_path,
                                                                                            pipeline_run):
    ran_repo, ran = pipeline_run
    assert any(stage.startswith("extract") for stage in ran)
    first = tmp_path / "first"
    shutil.copytree(ran_repo, first, symlinks=True)  # the clone that ran the pipeline
    remote = tmp_path / "shared-remote"  # a shared folder; S3, GCS or SSH remotes behave alike
    sh(first, sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(remote))
    commit(first, "pipeline run, lock and shared remote")
    sh(first, sys.executable, "-m", "dvc", "push", "--run-cache")

    second = tmp_path / "second"
    sh(tmp_path, "git", "clone", "-q", str(first), str(second))
    assert not (second / ".dvc" / "cache").exists()
    sh(second, sys.executable, "-m", "dvc", "pull", "--run-cache")
    ran_again = repro(second)
    assert not [stage for stage in ran_again if stage.startswith("extract")], ran_again

    metrics = sorted(path.relative_to(first) for path in (first / "metrics").rglob("*") if path.is_file())  # speeds too
    assert metrics
    for path in metrics:
        assert (second / path).read_bytes() == (first / path).read_bytes(), path
    features = sorted(path.relative_to(first) for path in (first / "data").rglob("*.npz"))
    assert features and all((second / path).read_bytes() == (first / path).read_bytes() for path in features)
