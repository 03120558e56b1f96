"""CLIP_benchmark's webdataset layout as a source: written from an image folder and read back the same,
streamed in flat memory, and every kind of damage reported as one line naming the shard and member."""

import io
import os
import re
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from clip_study.data import sources, subset, webdataset
from clip_study.data.webdataset import WebdatasetTable
from clip_study.data.webdataset_writer import write_webdataset
from clip_study.errors import BadFileError, UserError
from tests.test_images import corrupt_png, encoded, noise

CLASSES = ["red_fox", "cat", "dog"]  # sorted: cat, dog, red_fox


def image_folder(root: Path, per_class: int = 6) -> Path:
    """Class folders of tiny PNGs, JPEGs and a .jpeg, of several sizes."""
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            fmt, suffix = [("PNG", ".png"), ("JPEG", ".jpg"), ("JPEG", ".jpeg")][n % 3]
            (root / name / f"{n:02d}{suffix}").write_bytes(encoded(noise(8 + n, 10 * c + n), fmt))
    return root


@pytest.fixture
def dataset(tmp_path) -> tuple[Path, Path]:
    """(image folder, its webdataset: split 'test', 4 samples a shard, so 5 shards for 18 images)."""
    folder = image_folder(tmp_path / "images")
    assert write_webdataset(folder, tmp_path / "wds", "test", samples_per_shard=4) == 5
    return folder, tmp_path / "wds"


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def data_offset(shard: Path, name: str) -> int:
    """Where a member's bytes start in a shard."""
    with tarfile.open(shard) as tar:
        return tar.getmember(name).offset_data


def staged_bytes(source: sources.Source, staging: Path) -> list[bytes]:
    usable, bad = sources.check_examples(source.examples, staging=staging, workers=1)
    assert not bad
    return [example.path.read_bytes() for example in usable]


def test_a_webdataset_reads_as_the_image_folder_it_was_written_from(dataset, tmp_path):
    folder, root = dataset
    assert (root / "classnames.txt").read_text() == "cat\ndog\nred fox\n"
    assert (root / "test" / "nshards.txt").read_text() == "5\n"
    assert sources.is_webdataset(root) and not sources.is_webdataset(folder)
    from_folder, from_shards = sources.load_source(str(folder), "ignored"), sources.load_source(str(root), "test")
    names = subset.class_names([e.class_id for e in from_folder.examples])
    assert [e.class_id for e in from_shards.examples] == [names[e.class_id] for e in from_folder.examples]
    assert from_shards.damaged == [] and len(from_shards.examples) == 18
    assert from_shards.examples[5].where() == f"{root}/test/1.tar member s0000005.jpeg"
    assert staged_bytes(from_shards, tmp_path / "staging") == [e.path.read_bytes() for e in from_folder.examples]
    table = WebdatasetTable(root, "test")
    assert table.labels().tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert [row for row, _, _ in table.images([1, 8, 17])] == [1, 8, 17]
    assert table.read(8) == from_folder.examples[8].path.read_bytes()
    write_webdataset(folder, tmp_path / "again", "test", samples_per_shard=4)
    assert all((root / "test" / f"{k}.tar").read_bytes() == (tmp_path / "again" / "test" / f"{k}.tar").read_bytes()
               for k in range(5))  # the same folder gives the same shards
    with pytest.raises(UserError, match="already holds webdataset shards"):
        write_webdataset(folder, root, "test")


def test_shards_are_streamed_in_flat_memory_in_numeric_order(tmp_path):
    root, payload = tmp_path / "wds", 16_000
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for shard in range(40):  # no nshards.txt: 0.tar ... 39.tar by number (10.tar after 9.tar)
        write_tar(root / "train" / f"{shard}.tar",
                  [member for n in range(25) for member in
                   [(f"k{shard:02d}{n:02d}.cls", str(shard % 3).encode()),
                    (f"k{shard:02d}{n:02d}.webp", rng.bytes(payload))]])  # 16 MB in all; never decoded here
    before = sorted(tmp_path.rglob("*"))
    tracemalloc.start()
    try:
        table = WebdatasetTable(root, "train")  # no classnames.txt: reads the labels to name the classes
        labels_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        total = sum(len(data) for _, data, _ in table.images(range(1000)))
        images_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 1000 * payload and table.label_names == ["0", "1", "2"]
    assert labels_peak < 1_000_000 and images_peak < 1_000_000, (labels_peak, images_peak)  # 16 MB read
    assert table.labels().tolist() == np.repeat(np.arange(40) % 3, 25).tolist()
    with tarfile.open(root / "train" / "12.tar") as tar:
        expected = tar.extractfile("k1203.webp").read()
    assert next(table.images([303]))[1] == expected
    assert sorted(tmp_path.rglob("*")) == before  # nothing unpacked


def test_a_truncated_shard_keeps_its_samples_before_the_cut(dataset, tmp_path):
    folder, root = dataset
    shard = root / "test" / "1.tar"  # samples s0000004 to s0000007
    data = shard.read_bytes()
    shard.write_bytes(data[:data_offset(shard, "s0000006.png") + 10])
    source = sources.load_source(str(root), "test")
    assert source.damaged == [f"shard {shard}: truncated after sample s0000005 (unexpected end of data); "
                              "its later samples are lost"]
    kept = [e for n, e in enumerate(sources.scan_folder(folder).examples) if n not in (6, 7)]
    assert staged_bytes(source, tmp_path / "staging") == [e.path.read_bytes() for e in kept]  # rows still match
    # cut where a member header starts: tarfile alone would end the shard there without a word. The sample
    # being read, s0000009, might have had more members: it is lost too
    header = data_offset(root / "test" / "2.tar", "s0000010.cls") - 512
    (root / "test" / "2.tar").write_bytes((root / "test" / "2.tar").read_bytes()[:header])
    assert sources.load_source(str(root), "test").damaged[1] == (
        f"shard {root}/test/2.tar: truncated after sample s0000008 (it ends without the end-of-archive marker); "
        "its later samples are lost")


@pytest.mark.parametrize("content, detail", [(b"this is not a tar file\n" * 50, "a member header is damaged"),
                                             (b"", "empty file, 0 bytes"),
                                             (b"short", "it ends inside a member header")])
def test_a_shard_that_is_not_a_tar_is_reported(dataset, content, detail):
    _, root = dataset
    (root / "test" / "2.tar").write_bytes(content)
    source = sources.load_source(str(root), "test")
    assert len(source.damaged) == 1 and len(source.examples) == 14
    assert source.damaged[0].startswith(f"shard {root}/test/2.tar: not a tar file ({detail}")


def test_damaged_samples_are_reported_and_left_out_and_bad_image_bytes_go_to_the_image_check(dataset, tmp_path):
    _, root = dataset
    good = encoded(noise(8, 99))
    shard = root / "test" / "4.tar"
    write_tar(shard, [("a.cls", b"0"), ("a.png", good),
                      ("b.png", good),                        # no .cls
                      ("c.cls", b"cat"), ("c.png", good),     # not a class index
                      ("d.cls", b"7"), ("d.png", good),       # 3 classes
                      ("e.cls", b"1"), ("e.txt", b"caption"),  # no image
                      ("f.cls", b"2"), ("f.png", corrupt_png()),
                      ("g.cls", b" 1\n"), ("g.JPG", encoded(noise(8, 98), "JPEG"))])
    source = sources.load_source(str(root), "test")
    assert source.damaged == [
        f"shard {shard}: sample b: no .cls member with its class index (it has .png)",
        f"shard {shard}: sample c: member c.cls holds 'cat', not a class index (0, 1, ...)",
        f"shard {shard}: sample d: member d.cls holds class 7, but classnames.txt lists 3 classes (0 to 2)",
        f"shard {shard}: sample e: no image member (.webp, .png, .jpg or .jpeg; it has .cls, .txt)"]
    tail = source.examples[16:]
    assert [(e.where(), e.class_id) for e in tail] == [(f"{shard} member a.png", "cat"),
                                                       (f"{shard} member f.png", "red fox"),
                                                       (f"{shard} member g.JPG", "dog")]
    usable, bad = sources.check_examples(tail, staging=tmp_path / "staging", workers=1)
    assert [e.where() for e in usable] == [f"{shard} member a.png", f"{shard} member g.JPG"]
    assert [(e.where(), problem.reason) for e, problem in bad] == [(f"{shard} member f.png", "undecodable")]


def test_nshards_txt_chooses_the_shards(dataset):
    _, root = dataset
    write_tar(root / "test" / "9.tar", [("z.cls", b"0"), ("z.png", encoded(noise(8)))])
    assert len(sources.load_source(str(root), "test").examples) == 18  # 9.tar is not among the 5 listed
    (root / "test" / "nshards.txt").write_text("6\n")
    assert sources.load_source(str(root), "test").damaged == [
        f"shard {root}/test/5.tar: missing (the split has 6 shards)"]
    (root / "test" / "nshards.txt").unlink()
    assert len(sources.load_source(str(root), "test").examples) == 19  # every *.tar by number
    (root / "test" / "nshards.txt").write_text("five")
    with pytest.raises(BadFileError, match=r"nshards.txt: holds 'five', not a number of shards"):
        sources.load_source(str(root), "test")


def test_the_datasets_templates_become_this_projects(tmp_path):
    assert webdataset.dataset_templates(tmp_path) is None
    (tmp_path / "zeroshot_classification_templates.txt").write_text(
        "a photo of a {c}.\n\n  itap of my {c}  \n{c} in {{braces}}\n")
    assert webdataset.dataset_templates(tmp_path) == ["a photo of a {}.", "itap of my {}", "{} in {braces}"]
    for template in ["a photo of a {}.", "{} in {braces}", "{}"]:
        assert webdataset.project_template(webdataset.benchmark_template(template)) == template
    for line, problem in [("a photo", "has '{c}' 0 times"), ("{c} and {c}", "has '{c}' 2 times"),
                          ("a {0} photo", "has the field {0}"), ("{c!r}", "has the field {c}"),
                          ("{{}} {c}", "holds a literal '{}'"), ("a { photo {c}", "is not a format string")]:
        (tmp_path / "zeroshot_classification_templates.txt").write_text(f"a photo of a {{c}}.\n{line}\n")
        with pytest.raises(BadFileError, match=re.escape(f"line 2: {line!r} {problem}")):
            webdataset.dataset_templates(tmp_path)


def test_the_layout_is_told_apart_and_its_metadata_checked(dataset, tmp_path):
    folder, root = dataset
    assert sources.is_folder(str(root)) and not sources.is_parquet_folder(root)
    write_tar(folder / "cat" / "0.tar", [])
    (folder / "shards").mkdir()
    write_tar(folder / "shards" / "0.tar", [])
    assert not sources.is_webdataset(folder)  # class folders of images: an image folder with stray tars
    assert webdataset.classnames_path(root) == root / "classnames.txt"
    with pytest.raises(UserError, match=r"has no split 'valid' \(it has \['test'\]\); choose one"):
        sources.load_source(str(root), "valid")
    (root / "dataset_type.txt").write_text("retrieval\n")
    with pytest.raises(UserError, match="says 'retrieval': only classification webdatasets"):
        sources.load_source(str(root), "test")
    (root / "dataset_type.txt").write_text("classification\n")
    (root / "classnames.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(BadFileError, match=r"line 3: class name 'cat' repeats line 1"):
        sources.load_source(str(root), "test")


def test_the_listing_changes_with_a_shard_or_the_class_names(dataset):
    _, root = dataset
    write_tar(root / "test" / "9.tar", [])  # not listed in nshards.txt: not read, not listed
    listing = webdataset.shards_listing(root, "test")
    assert list(listing) == ["classnames.txt", "test/nshards.txt", *[f"test/{k}.tar" for k in range(5)]]
    assert listing["test/0.tar"]["bytes"] == (root / "test" / "0.tar").stat().st_size
    os.utime(root / "test" / "3.tar", ns=(1, 1))
    touched = webdataset.shards_listing(root, "test")
    assert touched != listing and touched["test/3.tar"]["mtime_ns"] == 1
    (root / "classnames.txt").write_text("cat\ndog\nfox\n")
    assert webdataset.shards_listing(root, "test")["classnames.txt"] != listing["classnames.txt"]
