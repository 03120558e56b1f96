"""The same images as an image folder and in CLIP_benchmark's webdataset layout, run through the study's stages
(fetch, extract, zeroshot, probe, logreg): the same subset, byte-identical features, the same metrics."""

import os
import shutil
from pathlib import Path

import pytest
import yaml

from clip_study.data.subset import read_classes
from clip_study.data.webdataset_writer import write_webdataset
from stages import extract, fetch, logreg, probe, zeroshot
from tests.conftest import one_dataset

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("zeroshot.json", "confusion_zeroshot.json", "probe.json", "probe_curve.json", "logreg.json",
           "logreg_sweep.json")


def study(folder: Path, source: Path, checkpoint: Path) -> Path:
    """The study's stages on ``source``, run in this process into ``folder``."""
    folder.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = one_dataset(str(source), split="test", classes=6, test_size=0.5)
    params["models"] = {"clip": {"name": str(checkpoint), "family": "auto"}}
    params["model"]["device"] = "cpu"
    params["extract"].update(batch_size=8, workers=0)
    params["probe"].update(epochs=2, lr=0.01)
    params["logreg"].update(val_fraction=0.5, C_steps=3)
    params["evaluation"].update(val_fraction=0.5, resamples=200)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    s, p = str(folder), f"--params={folder}/params.yaml"
    cwd = os.getcwd()
    os.chdir(ROOT)  # template files in params are paths from the repository root
    try:
        fetch.main([p, f"--out={s}/subset", f"--templates={s}/templates.json", f"--metrics={s}/fetch.json"])
        extract.main([p, f"--subset={s}/subset", f"--out={s}/features"])
        zeroshot.main([p, f"--subset={s}/subset", f"--own-templates={s}/templates.json", f"--features={s}/features",
                       f"--out={s}/zeroshot", f"--metrics={s}/zeroshot.json", f"--confusion={s}/confusion_zeroshot.json",
                       f"--heads={s}/heads/zeroshot.npz"])
        probe.main([p, f"--subset={s}/subset", f"--features={s}/features", f"--out={s}/probe",
                    f"--metrics={s}/probe.json", f"--curve={s}/probe_curve.json", f"--confusion={s}/confusion_probe.json",
                    f"--heads={s}/heads/probe.npz"])
        logreg.main([p, f"--features={s}/features", f"--subset={s}/subset", f"--out={s}/logreg",
                     f"--metrics={s}/logreg.json", f"--sweep={s}/logreg_sweep.json",
                     f"--confusion={s}/confusion_logreg.json", f"--heads={s}/heads/logreg.npz"])
    finally:
        os.chdir(cwd)
    return folder


def test_a_webdataset_gives_the_subset_features_and_metrics_of_the_same_images_as_a_folder(
        tmp_path, tiny_clip_dir, shape_folder):
    images = tmp_path / "images"
    shutil.copytree(shape_folder, images)
    shards = tmp_path / "wds"
    assert write_webdataset(images, shards, "test", samples_per_shard=50) == 4  # 49 classes x 4 images
    as_folder = study(tmp_path / "folder", images, tiny_clip_dir)
    as_shards = study(tmp_path / "shards", shards, tiny_clip_dir)

    # the same classes (a folder's ids are its folder names, a webdataset's its classnames.txt lines) and images
    folder_classes, shard_classes = read_classes(as_folder / "subset"), read_classes(as_shards / "subset")
    assert [c["name"] for c in folder_classes] == [c["name"] for c in shard_classes]
    assert [c["id"].replace("_", " ") for c in folder_classes] == [c["id"] for c in shard_classes]
    for split in ("train.csv", "test.csv"):
        assert (as_shards / "subset" / split).read_bytes() == (as_folder / "subset" / split).read_bytes()
    written = sorted(p.relative_to(as_folder / "subset").as_posix() for p in (as_folder / "subset" / "images").rglob("*"))
    assert written == sorted(p.relative_to(as_shards / "subset").as_posix()
                             for p in (as_shards / "subset" / "images").rglob("*"))
    for name in written:
        if (as_folder / "subset" / name).is_file():
            assert (as_shards / "subset" / name).read_bytes() == (as_folder / "subset" / name).read_bytes(), name

    for split in ("train.npz", "test.npz"):  # byte-identical features
        assert (as_shards / "features" / split).read_bytes() == (as_folder / "features" / split).read_bytes()
    for name in METRICS:
        assert (as_shards / name).read_text() == (as_folder / name).read_text(), name
    assert yaml.safe_load((as_shards / "fetch.json").read_text())["damaged_samples"] == 0


def test_a_webdatasets_own_templates_replace_the_studys_unless_params_name_a_file(tmp_path, tiny_clip_dir, shape_folder):
    shards = tmp_path / "wds"
    write_webdataset(shape_folder, shards, "test", samples_per_shard=100, templates=["a sketch of a {}.", "{}"])
    run = study(tmp_path / "own", shards, tiny_clip_dir)
    assert yaml.safe_load((run / "templates.json").read_text()) == {"templates": ["a sketch of a {}.", "{}"]}
    templates = yaml.safe_load((run / "zeroshot.json").read_text())["templates"]
    assert [t["template"] for t in templates.values()] == ["a sketch of a {}.", "{}"]
