"""Sources, class selection and names, the split, and the subset format."""

import hashlib
import io
import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from clip_study import files
from clip_study.data import features, sources, subset
from clip_study.errors import UserError
from tests.conftest import one_dataset


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(5), 20)
    train, test = subset.split_indices(labels, 0.2, seed=0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 100
    assert np.bincount(labels[test]).tolist() == [4] * 5  # 20 % of every class
    again, _ = subset.split_indices(labels, 0.2, seed=0)
    other, _ = subset.split_indices(labels, 0.2, seed=1)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_split_needs_two_images_per_class():
    with pytest.raises(UserError, match="at least 2 per class"):
        subset.split_indices(np.array([0, 0, 1]), 0.5, seed=0)


def test_cap_per_class():
    labels = np.array([0] * 10 + [1] * 3)
    kept = subset.cap_per_class(labels, 4, seed=0)
    assert np.bincount(labels[kept]).tolist() == [4, 3]
    np.testing.assert_array_equal(kept, subset.cap_per_class(labels, 4, seed=0))
    assert len(subset.cap_per_class(labels, None, seed=0)) == 13


def test_class_names_curated_for_wnids_and_readable_for_folders(tmp_path):
    names = subset.class_names(["n01443537", "red_circle"])
    assert names == {"n01443537": "goldfish", "red_circle": "red circle"}
    names_file = tmp_path / "names.tsv"
    names_file.write_text("red_circle\tcrimson disc\n")
    assert subset.class_names(["red_circle", "blue_square"], str(names_file)) == \
        {"red_circle": "crimson disc", "blue_square": "blue square"}


def test_select_classes():
    available = ["a_1", "b_2", "c_3", "d_4"]
    names = subset.class_names(available)
    assert subset.select_classes(available, names, "all", 0) == available
    chosen = subset.select_classes(available, names, 2, seed=0)
    assert len(chosen) == 2 and chosen == subset.select_classes(available, names, 2, seed=0)
    assert subset.select_classes(available, names, ["c_3", "a 1"], 0) == ["a_1", "c_3"]  # ids or names
    with pytest.raises(UserError, match=r"^\['zebra'\] not in the dataset"):
        subset.select_classes(available, names, ["a_1", "zebra"], 0)
    with pytest.raises(UserError, match="5 classes requested, the dataset has 4"):
        subset.select_classes(available, names, 5, 0)


def test_a_class_named_twice_or_a_shared_name_is_refused():
    available = ["n1", "n2", "n3"]
    names = {"n1": "missile", "n2": "missile", "n3": "goldfish"}
    with pytest.raises(UserError, match=r"'missile' names 2 classes \(n1, n2\); list them by id"):
        subset.select_classes(available, names, ["missile", "goldfish"], 0)
    with pytest.raises(UserError, match=r"'n3' and 'goldfish' are the same class \(n3\); list it once"):
        subset.select_classes(available, names, ["n3", "goldfish", "n1"], 0)
    assert subset.select_classes(available, names, ["n2", "goldfish"], 0) == ["n2", "n3"]
    with pytest.raises(UserError, match="classes n1 and n2 are both named 'missile'; zero-shot cannot"):
        subset.check_distinct_names(available, names)
    subset.check_distinct_names(["n1", "n3"], names)


def test_shipped_imagenet_names_are_distinct():
    names = subset.imagenet_names()
    assert len(names) == 1000 and len(set(names.values())) == 1000
    assert names["n04008634"] == "projectile" and names["n04355933"] == "sunglass"


def test_scan_image_folder_and_subset_roundtrip(shape_folder, tmp_path):
    examples = sources.scan_folder(shape_folder).examples
    assert len(examples) == 49 * 4
    assert examples[0].class_id == "blue_circle" and examples[0].path.suffix == ".png"
    labels = np.repeat(np.arange(49), 4)
    classes = [{"id": c, "name": c.replace("_", " ")} for c in dict.fromkeys(e.class_id for e in examples)]
    train, test = subset.split_indices(labels, 0.25, seed=0)
    subset.write_subset(tmp_path / "subset", examples, labels, classes, {"train": train, "test": test})
    paths, read_labels = subset.read_split(tmp_path / "subset", "test")
    assert len(paths) == 49 and read_labels.tolist() == labels[test].tolist()
    assert paths[0].read_bytes() == examples[test[0]].path.read_bytes()  # bytes copied, not re-encoded
    assert subset.read_classes(tmp_path / "subset") == classes


def test_folder_with_one_class_is_refused(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "1.png")
    with pytest.raises(UserError, match="1 class folder"):
        sources.load_source(str(tmp_path), "train").examples
    with pytest.raises(UserError, match="0 class folder"):
        sources.load_source(str(tmp_path / "cat"), "train").examples


def test_encoded_bytes_keep_their_format():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    assert sources.Example(class_id="x", data=buffer.getvalue()).suffix() == ".jpg"


def test_features_roundtrip_without_pickle(tmp_path):
    values, labels = np.ones((3, 4), dtype=np.float64), np.array([0, 1, 1])
    features.save_features(tmp_path / "f.npz", values, labels)
    loaded, loaded_labels = features.load_features(tmp_path / "f.npz")
    assert loaded.dtype == np.float32 and loaded_labels.tolist() == [0, 1, 1]


def test_save_npz_gives_the_same_bytes_every_time_and_refuses_pickle(tmp_path, monkeypatch):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "names": np.array(["a", "bc"])}
    files.save_npz(tmp_path / "a.npz", **arrays)
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)  # another day: np.savez would stamp it
    files.save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["x"], arrays["x"]) and list(npz["names"]) == ["a", "bc"]
    with pytest.raises(TypeError, match="only pickle could store"):
        files.save_npz(tmp_path / "c.npz", bad=np.array([{"a": 1}], dtype=object))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_folder_listing_changes_with_its_images_and_only_then(shape_folder, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(shape_folder, folder)
    before = sources.folder_listing(folder)
    assert len(before) == 49 and before["red_circle"]["images"] == 4
    assert sources.folder_listing(folder) == before  # read again, nothing touched
    Image.new("RGB", (8, 8)).save(folder / "red_circle" / "extra.png")
    (folder / "blue_star" / "0000.png").write_bytes(b"replaced")
    after = sources.folder_listing(folder)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"red_circle", "blue_star"}
    assert after["red_circle"]["images"] == 5 and after["blue_star"]["bytes"] < before["blue_star"]["bytes"]


@pytest.mark.parametrize("dataset", ["folder", "zh-plus/tiny-imagenet"])
def test_the_scan_stage_records_a_folder_or_a_hub_id(shape_folder, tmp_path, dataset):
    from stages import scan

    names = tmp_path / "names.tsv"
    names.write_text("red_circle\tscarlet disc\n")
    dataset = str(shape_folder) if dataset == "folder" else dataset
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"datasets": one_dataset(
        dataset, split="valid", class_names=str(names))}))
    scan.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "source.json")])
    record = json.loads((tmp_path / "source.json").read_text())
    assert record["class_names_md5"] == hashlib.md5(names.read_bytes()).hexdigest()
    if dataset == "zh-plus/tiny-imagenet":  # no network needed: a hub dataset is recorded by id and split
        assert record == {"dataset": dataset, "split": "valid", "class_names_md5": record["class_names_md5"],
                          "classes": None, "files": None}
    else:
        assert record["split"] is None and record["files"] is None
        assert record["classes"] == sources.folder_listing(shape_folder)
