"""fetch at scale: checks in a pool of processes equal the serial ones, local files are hard-linked (or copied
where links fail) into the same subset, and a hub-format dataset is streamed a chunk of rows at a time."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from clip_study.data import sources, subset, tables
from clip_study.errors import UserError
from stages import fetch
from tests.conftest import one_dataset
from tests.test_images import encoded, noise, truncated_jpeg

ROOT = Path(__file__).resolve().parents[1]
BAD = {7: b"", 13: truncated_jpeg(), 29: b"not an image at all"}  # position in each class -> content


def image_bytes(n: int) -> bytes:
    return BAD[n % 40] if n % 40 in BAD else encoded(noise(8, n), "JPEG" if n % 3 else "PNG")


def image_folder(root: Path, classes: int = 3, per_class: int = 40) -> Path:
    """Class folders of small JPEGs and PNGs with an empty, a truncated and a non-image file each."""
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True)
        for n in range(per_class):
            suffix = ".png" if n % 3 == 0 else ".jpg"
            (root / f"class_{c}" / f"{n:03d}{suffix}").write_bytes(image_bytes(c * per_class + n))
    return root


def parquet_folder(root: Path, contents: list[bytes], labels: list[int], names: list[str],
                   split: str = "valid", shards: int = 2, group: int = 100) -> Path:
    """A downloaded hub dataset: data/<split>-0000k-of-0000n.parquet with the datasets library's features."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    image = pa.StructArray.from_arrays([pa.array(contents, pa.binary()), pa.nulls(len(contents), pa.string())],
                                       names=["bytes", "path"])
    table = pa.Table.from_arrays([image, pa.array(labels, pa.int64())], schema=features.arrow_schema)
    (root / "data").mkdir(parents=True)
    bounds = np.linspace(0, len(contents), shards + 1).astype(int)
    for k in range(shards):
        pq.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]),
                       root / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet", row_group_size=group)
    return root


def as_values(result):
    usable, bad = result
    return ([(e.class_id, e.path, e.data, e.row, e.name) for e in usable],
            [(e.class_id, e.path, e.row, problem) for e, problem in bad])


def test_pooled_checks_equal_the_serial_ones_and_stop_at_the_first_bad(tmp_path):
    examples = sources.scan_folder(image_folder(tmp_path / "images")).examples
    serial = as_values(sources.check_examples(examples, workers=1))
    assert len(serial[0]) == 111
    assert [problem.reason for *_, problem in serial[1]] == ["empty", "truncated", "not_an_image"] * 3
    assert as_values(sources.check_examples(examples, workers=2, chunk=3)) == serial
    first_bad = as_values(sources.check_examples(examples, stop_at_first_bad=True, workers=2, chunk=3))
    assert first_bad == (serial[0][:7], serial[1][:1])  # the 8th image of the first class, nothing after it
    assert as_values(sources.check_examples(examples, stop_at_first_bad=True, workers=1)) == first_bad


def test_pooled_checks_of_table_rows_stage_the_same_files_and_cancel_pending_work(tmp_path):
    contents = [image_bytes(n) for n in range(600)]
    table = tables.parquet_table(parquet_folder(tmp_path / "pq", contents, [n % 4 for n in range(600)],
                                                list("abcd")), "valid")
    examples = sources.table_examples(table)
    assert [e.class_id for e in examples[:5]] == list("abcda") and examples[0].path is examples[0].data is None
    results = {}
    for workers in (1, 2):
        usable, bad = sources.check_examples(examples, staging=tmp_path / f"staged{workers}", workers=workers,
                                             chunk=7)
        assert all(e.staged and e.path.read_bytes() == contents[e.row] for e in usable)
        results[workers] = ([(e.row, e.path.name) for e in usable], [(e.row, p) for e, p in bad])
    assert results[1] == results[2] and len(results[1][0]) == 600 - 45
    assert [row for row, _ in results[1][1]][:3] == [7, 13, 29]
    assert results[1][0][:2] == [(0, "000000000.png"), (1, "000000001.jpg")]
    usable, bad = sources.check_examples(examples, True, tmp_path / "stop", workers=2, chunk=7)
    assert [e.row for e in usable] == list(range(7)) and [e.row for e, _ in bad] == [7]
    # in flight when row 7 came back: at most 4 tasks per process (+1), 7 rows each; the rest was cancelled
    assert len(list((tmp_path / "stop").iterdir())) <= 7 * (4 * 2 + 1) < 600 - 45


def subset_files(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


def run_fetch(tmp_path: Path, dataset: Path, out: str, **changes) -> dict:
    params = {"datasets": one_dataset(str(dataset), **{"split": "valid", "max_per_class": 30, "test_size": 0.25,
                                                       **changes})}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    fetch.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / out),
                "--templates", str(tmp_path / f"{out}-templates.json"), "--metrics", str(tmp_path / f"{out}.json")])
    return json.loads((tmp_path / f"{out}.json").read_text())


def links_work(folder: Path) -> bool:
    """Whether this filesystem allows hard links (the test's tmp folder may not)."""
    (folder / "probe").write_bytes(b"x")
    try:
        os.link(folder / "probe", folder / "probe.link")
    except OSError:
        return False
    return True


def refuse_link(*args, **kwargs):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.mark.parametrize("kind", ["folder", "parquet"])
def test_pooled_fetch_writes_the_serial_subset_with_hard_links(tmp_path, monkeypatch, kind):
    if kind == "folder":
        dataset = image_folder(tmp_path / "images")
        (tmp_path / "elsewhere.png").write_bytes(encoded(noise(8, 999)))
        (dataset / "class_0" / "zzz.png").symlink_to(tmp_path / "elsewhere.png")
    else:
        dataset = parquet_folder(tmp_path / "pq", [image_bytes(n) for n in range(120)],
                                 [n // 40 for n in range(120)], ["class_0", "class_1", "class_2"])
    monkeypatch.setattr(sources, "MIN_POOLED", 1)
    written = {}
    for cores in (1, 2):
        monkeypatch.setattr(sources, "usable_cores", lambda: cores)
        metrics = run_fetch(tmp_path, dataset, f"subset{cores}")
        written[cores] = subset_files(tmp_path / f"subset{cores}")
    assert metrics["images_checked"] == 120 + (kind == "folder") and metrics["images_skipped"] == 9
    assert metrics["images_used"] == 90 and written[1] == written[2]
    paths, labels = subset.read_split(tmp_path / "subset2", "train")
    listed = [path.relative_to(tmp_path / "subset2").as_posix()
              for split in ("train", "test") for path in subset.read_split(tmp_path / "subset2", split)[0]]
    assert set(written[2]) == {"classes.json", "train.csv", "test.csv", *listed}  # nothing staged is left
    assert len(paths) == 67 and np.bincount(labels).tolist() == [22, 22, 23]
    if kind == "folder":
        linked = links_work(tmp_path)
        assert all((os.stat(path).st_nlink > 1) == linked for path in paths)
        if linked:  # a symlinked file: its target is linked
            subset.link_or_copy(dataset / "class_0" / "zzz.png", tmp_path / "linked.png")
            assert not (tmp_path / "linked.png").is_symlink()
            assert os.path.samefile(tmp_path / "linked.png", tmp_path / "elsewhere.png")
            monkeypatch.setattr(os, "link", refuse_link)
            run_fetch(tmp_path, dataset, "copied")
            assert subset_files(tmp_path / "copied") == written[1]
            assert all(path.stat().st_nlink == 1 for path in (tmp_path / "copied" / "images").rglob("*.*"))


def test_a_parquet_folder_is_told_apart_listed_and_its_split_named(tmp_path):
    dataset = parquet_folder(tmp_path / "pq", [image_bytes(n) for n in range(4)], [0, 1, 0, 1], ["a", "b"],
                             split="train", shards=1)
    assert sources.is_parquet_folder(dataset) and not sources.is_parquet_folder(image_folder(tmp_path / "images"))
    listing = sources.files_listing(dataset)
    assert list(listing) == ["data/train-00000-of-00001.parquet"]
    assert listing["data/train-00000-of-00001.parquet"]["bytes"] == (dataset / list(listing)[0]).stat().st_size
    os.utime(dataset / list(listing)[0], ns=(1, 1))
    assert sources.files_listing(dataset) != listing
    with pytest.raises(UserError, match=r"holds no parquet file of split 'valid' \(it has \['train'\]\)"):
        sources.load_source(str(dataset), "valid")
    assert [e.class_id for e in sources.load_source(str(dataset), "train").examples] == ["a", "b", "a", "b"]
    (tmp_path / "neither" / "notes").mkdir(parents=True)
    with pytest.raises(UserError, match="has 0 class folders with images and no parquet files"):
        sources.load_source(str(tmp_path / "neither"), "train")


@pytest.mark.slow  # 100,000 images through fetch
def test_a_hub_dataset_of_100000_images_is_fetched_in_flat_memory(tmp_path):
    """100,000 rows of 10 distinct 16x16 PNGs, 10 classes: fetch stays under 1 GB (held as one list of
    bytes, as before, they would be ~100 MB; the subset's 100,000 files are what takes the time)."""
    contents = [encoded(noise(16, n)) for n in range(10)]
    labels = np.arange(100_000) % 10
    dataset = parquet_folder(tmp_path / "pq", [contents[(n * 7) % 10] for n in range(100_000)], labels.tolist(),
                             [f"class_{c}" for c in range(10)], shards=2, group=100)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"datasets": one_dataset(str(dataset), split="valid")}))
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "stages.fetch", "--params",
                           str(tmp_path / "params.yaml"), "--out", str(tmp_path / "subset"), "--templates",
                           str(tmp_path / "templates.json"), "--metrics", str(tmp_path / "fetch.json")],
                          cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    peak_mb = int(done.stdout.split()[-1]) / 1024
    print(f"fetch of 100,000 hub-format images: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 1024
    metrics = json.loads((tmp_path / "fetch.json").read_text())
    assert (metrics["images_found"], metrics["images_used"], metrics["train_images"], metrics["test_images"]) == \
        (100_000, 100_000, 80_000, 20_000)
    assert metrics["classes_kept"] == 10 and metrics["images_skipped"] == 0
    assert len(list((tmp_path / "subset" / "images" / "test").iterdir())) == 20_000
