"""Caption datasets, up to their subset: the four kinds of source (a hub dataset, a folder with a captions file,
a parquet folder, a retrieval webdataset) read the same, every problem of a captions file one line naming it,
fetch_captions' test-only subset with its captions.json, and the demo's generated caption set."""

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from clip_study.data import captions, sources, subset, webdataset
from clip_study.data.captions import load_caption_source, read_captions
from clip_study.demo import shapes
from clip_study.errors import BadFileError, UserError
from clip_study.pipeline import fetching
from tests.test_images import corrupt_png, encoded, noise

# The same caption dataset in every layout: (image path, captions); one image with a single caption, one whose
# caption holds a newline (a webdataset writes it as the two characters \n), one with three.
DATA = [("images/red/0.png", ["a red circle", "a round red thing", "red: a circle"]),
        ("images/red/1.png", ["one caption alone"]),
        ("images/blue/0.png", ["a blue square", "two lines,\nof one caption"]),
        ("images/blue/1.png", ["a blue star", "a star, blue"]),
        ("images/green/0.png", ["a green cross", "green, crossed"])]
KINDS = ("jsonl", "csv", "parquet", "webdataset")


def image_bytes(index: int) -> bytes:
    return encoded(noise(8 + index, index))


def write_images(root: Path, data=DATA, bad: int | None = None) -> None:
    for index, (path, _) in enumerate(data):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(corrupt_png() if index == bad else image_bytes(index))


def write_jsonl(root: Path, data=DATA, bad: int | None = None, name: str = "test.jsonl") -> Path:
    """One line an image ("caption" for one, "captions" for several), the first image's last caption on a line of
    its own after the others: its captions gather, and it stays first."""
    write_images(root, data, bad)
    lines = []
    for index, (path, texts) in enumerate(data):
        head = texts[:-1] if index == 0 and len(texts) > 1 else texts
        lines.append({"image": path, "caption": head[0]} if len(head) == 1 else {"image": path, "captions": head})
    if len(data[0][1]) > 1:
        lines.append({"image": "./" + data[0][0], "caption": data[0][1][-1]})  # another spelling of its path
    (root / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def write_csv(root: Path, data=DATA, bad: int | None = None, name: str = "test.csv") -> Path:
    write_images(root, data, bad)
    with open(root / name, "w", newline="") as file:
        csv.writer(file).writerows([("image", "caption"), *((path, text) for path, texts in data for text in texts)])
    return root


def write_parquet(root: Path, data=DATA, bad: int | None = None) -> Path:
    import datasets

    features = datasets.Features({"image": datasets.Image(), "captions": datasets.Sequence(datasets.Value("string"))})
    images = [{"bytes": corrupt_png() if index == bad else image_bytes(index), "path": None}
              for index in range(len(data))]
    table = datasets.Dataset.from_dict({"image": images, "captions": [texts for _, texts in data]}, features=features)
    (root / "data").mkdir(parents=True)
    table.to_parquet(root / "data" / "test-00000-of-00001.parquet")
    return root


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def caption_text(texts: list[str]) -> bytes:
    """A sample's .txt as CLIP_benchmark writes it: a caption a line, a caption's own newline as \\n."""
    return "\n".join(text.replace("\n", "\\n") for text in texts).encode()


def write_webdataset(root: Path, data=DATA, bad: int | None = None, per_shard: int = 2) -> Path:
    (root / "test").mkdir(parents=True)
    (root / "dataset_type.txt").write_text("retrieval\n")
    shards = (len(data) + per_shard - 1) // per_shard
    for shard in range(shards):
        with tarfile.open(root / "test" / f"{shard}.tar", "w") as tar:
            for index in range(shard * per_shard, min((shard + 1) * per_shard, len(data))):
                add_member(tar, f"s{index:07d}.png", corrupt_png() if index == bad else image_bytes(index))
                add_member(tar, f"s{index:07d}.txt", caption_text(data[index][1]))
    (root / "test" / "nshards.txt").write_text(f"{shards}\n")
    return root


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet, "webdataset": write_webdataset}
KEYS = {"jsonl": [path for path, _ in DATA], "csv": [path for path, _ in DATA],
        "parquet": [str(row) for row in range(len(DATA))], "webdataset": [f"s{row:07d}" for row in range(len(DATA))]}


def staged(source: captions.CaptionSource, staging: Path) -> list[bytes]:
    usable, bad = sources.check_examples(source.examples, staging=staging, workers=1)
    assert not bad
    return [(example.path.read_bytes() if example.path else example.data) for example in usable]


# -- the sources --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_each_layout_reads_every_image_with_its_captions_in_source_order(tmp_path, kind):
    root = WRITERS[kind](tmp_path / kind)
    source = load_caption_source(str(root), "test")
    assert source.captions == [texts for _, texts in DATA]
    assert [example.class_id for example in source.examples] == KEYS[kind]
    assert staged(source, tmp_path / "staging") == [image_bytes(index) for index in range(len(DATA))]
    assert (source.uncaptioned, source.damaged, source.ignored_files, source.warnings()) == ([], [], [], [])


def test_a_hub_dataset_reads_its_image_column_and_its_one_column_of_lists_of_texts(monkeypatch):
    import datasets

    features = datasets.Features({"id": datasets.Value("int64"), "image": datasets.Image(),
                                  "caption": datasets.List(datasets.Value("string")),
                                  "filename": datasets.Value("string")})  # a text column: the list column wins
    table = datasets.Dataset.from_dict(
        {"id": [7, 8, 9], "image": [{"bytes": image_bytes(n), "path": None} for n in range(3)],
         "caption": [["a cat", "a small cat"], [], ["a dog"]], "filename": ["a.jpg", "b.jpg", "c.jpg"]},
        features=features)
    asked = []
    monkeypatch.setattr(sources, "load_from_hub", lambda load, kind, name: load(False))
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: asked.append((name, split)) or table)
    source = load_caption_source("owner/flickr", "test")
    assert asked == [("owner/flickr", "test")]
    assert source.captions == [["a cat", "a small cat"], ["a dog"]]
    assert [(e.class_id, e.row, e.where()) for e in source.examples] == [("0", 0, "owner/flickr test example 0"),
                                                                         ("2", 2, "owner/flickr test example 2")]
    assert source.uncaptioned == ["owner/flickr test example 1"]
    assert source.warnings() == ["left out 1 image(s) without a caption (e.g. owner/flickr test example 1)"]
    usable, bad = sources.check_examples(source.examples, workers=1)
    assert bad == [] and [example.data for example in usable] == [image_bytes(0), image_bytes(2)]


def test_a_hub_dataset_of_one_text_column_has_one_caption_an_image(monkeypatch):
    import datasets

    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": image_bytes(n), "path": None} for n in range(3)], "text": ["a cat", None, "a dog"]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")}))
    monkeypatch.setattr(sources, "load_from_hub", lambda load, kind, name: table)
    source = load_caption_source("owner/pairs", "test")
    assert source.captions == [["a cat"], ["a dog"]] and len(source.uncaptioned) == 1


@pytest.mark.parametrize("columns, problem", [
    ({"caption": "texts", "sentences": "texts"}, "has 2 candidate captions columns (caption: list of texts, "
                                                 "sentences: list of texts) and no way to tell which to read"),
    ({"title": "text", "alt": "text"}, "has 2 candidate captions columns (title: text, alt: text)"),
    ({"label": "int"}, "has no captions column (a list of texts, or a text) (columns: image: Image, label: int64"),
])
def test_a_hub_dataset_without_one_clear_captions_column_is_one_line_naming_its_columns(monkeypatch, columns, problem):
    import datasets

    kinds = {"texts": (datasets.List(datasets.Value("string")), ["x"]), "text": (datasets.Value("string"), "x"),
             "int": (datasets.Value("int64"), 1)}
    features = datasets.Features({"image": datasets.Image(),
                                  **{name: kinds[kind][0] for name, kind in columns.items()}})
    table = datasets.Dataset.from_dict({"image": [{"bytes": image_bytes(0), "path": None}],
                                        **{name: [kinds[kind][1]] for name, kind in columns.items()}},
                                       features=features)
    monkeypatch.setattr(sources, "load_from_hub", lambda load, kind, name: table)
    with pytest.raises(UserError) as error:
        load_caption_source("owner/data", "test")
    assert str(error.value).startswith(f"'owner/data' split 'test' {problem}") and "\n" not in str(error.value)


def test_a_parquet_folder_chooses_its_columns_as_a_hub_dataset_and_streams_its_images(tmp_path):
    import datasets

    root = write_parquet(tmp_path / "pq")
    table = datasets.Dataset.from_dict({"image": [{"bytes": image_bytes(0), "path": None}], "a": [["x"]], "b": [["y"]]},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "a": datasets.Sequence(datasets.Value("string")),
                                                                   "b": datasets.Sequence(datasets.Value("string"))}))
    table.to_parquet(root / "data" / "valid-00000-of-00001.parquet")
    source = load_caption_source(str(root), "test")
    assert isinstance(source.examples[0].table, sources.tables.ParquetTable) and source.examples[0].data is None
    with pytest.raises(UserError, match=r"valid-00000-of-00001.parquet has 2 candidate captions columns \(a: list of "
                                        r"texts, b: list of texts\)"):
        load_caption_source(str(root), "valid")
    with pytest.raises(UserError, match=r"holds no parquet file of split 'train' \(it has \['test', 'valid'\]\)"):
        load_caption_source(str(root), "train")


def test_a_folder_uses_its_splits_captions_file_else_captions_jsonl_and_lists_the_images_it_leaves_out(tmp_path):
    root = write_jsonl(tmp_path / "f", name="captions.jsonl")
    (root / "images" / "extra.png").write_bytes(image_bytes(9))
    (root / "notes.txt").write_text("not an image")
    source = load_caption_source(str(root), "anything")  # no anything.jsonl: captions.jsonl, whatever the split
    assert source.captions == [texts for _, texts in DATA] and source.ignored_files == [root / "images" / "extra.png"]
    assert source.warnings() == [f"ignored 1 image file(s) of the folder that its captions file does not name (e.g. "
                                 f"{root / 'images' / 'extra.png'})"]
    (root / "valid.csv").write_text("image,caption\nimages/red/1.png,only this\nimages/red/0.png,and this\n")
    assert load_caption_source(str(root), "valid").captions == [["only this"], ["and this"]]
    (root / "valid.jsonl").write_text('{"image": "images/red/1.png", "caption": "x"}\n')
    with pytest.raises(UserError, match=r"holds both valid.jsonl and valid.csv: either could hold the captions of "
                                        r"split 'valid'; keep one$"):
        load_caption_source(str(root), "valid")
    (root / "captions.csv").write_text("image,caption\n")
    with pytest.raises(UserError, match="holds both captions.jsonl and captions.csv"):
        load_caption_source(str(root), "test")


def test_a_folder_with_no_caption_source_says_what_it_looked_for(tmp_path):
    write_images(tmp_path / "f")
    with pytest.raises(UserError) as error:
        load_caption_source(str(tmp_path / "f"), "test")
    assert str(error.value) == (f"folder {tmp_path / 'f'} holds no captions file (test.jsonl, test.csv, captions.jsonl,"
                                " captions.csv), no webdataset split (<split>/0.tar) and no parquet files; give a "
                                "folder of images with a captions file, or a caption dataset's webdataset or parquet "
                                "folder")


JSONL_FIX = captions.JSONL_FIX


@pytest.mark.parametrize("line, problem, fix", [
    ('{"image": "images/red/9.png", "caption": "x"}', "line 2: image 'images/red/9.png' not found in {root}",
     "correct its path (relative to the folder) or remove the line"),
    ('{"image": "images/red", "caption": "x"}', "line 2: image 'images/red' is a folder in {root}",
     "correct its path (relative to the folder) or remove the line"),
    ('{"image": "../outside.png", "caption": "x"}', "line 2: image '../outside.png' is not a file inside the folder",
     "give its path relative to the folder, inside it"),
    ('{"image": "/etc/passwd", "caption": "x"}', "line 2: image '/etc/passwd' is not a file inside the folder",
     "give its path relative to the folder, inside it"),
    ('{"image": "images/red/1.png", "caption": "  "}', "line 2: the caption is empty",
     "write the caption or remove it"),
    ('{"image": "images/red/1.png", "captions": ["a", ""]}', 'line 2: caption 2 of "captions" is empty',
     "write the caption or remove it"),
    ('{"image": "images/red/1.png", "captions": []}', 'line 2: "captions" is [], not a list of one caption or more',
     JSONL_FIX),
    ('{"image": "images/red/1.png", "caption": 3}', "line 2: the caption is 3, not a text", JSONL_FIX),
    ('{"image": "images/red/1.png", "caption": "a", "captions": ["b"]}',
     "line 2: has the keys ['caption', 'captions', 'image'], not \"image\" and one of \"caption\", \"captions\"",
     JSONL_FIX),
    ('{"file": "images/red/1.png", "caption": "a"}',
     "line 2: has the keys ['caption', 'file'], not \"image\" and one of \"caption\", \"captions\"", JSONL_FIX),
    ('["images/red/1.png", "a"]', "line 2: is ['images/red/1.png', 'a'], not \"image\" and one of", JSONL_FIX),
    ('{"image": "images/red/1.png", "caption": "a"', "line 2: not valid JSON (column 45: Expecting ',' delimiter)",
     JSONL_FIX),
])
def test_a_bad_line_of_a_jsonl_captions_file_is_one_line_naming_the_file_the_line_and_the_fix(tmp_path, line, problem,
                                                                                               fix):
    root = tmp_path / "f"
    write_images(root)
    (root / "test.jsonl").write_text('{"image": "images/red/0.png", "caption": "fine"}\n' + line + "\n")
    with pytest.raises(BadFileError) as error:
        load_caption_source(str(root), "test")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{root / 'test.jsonl'}: {problem.format(root=root)}")
    assert message.endswith(f"; {fix}")


@pytest.mark.parametrize("text, problem", [
    ("image,caption\nimages/red/0.png,fine\nimages/red/1.png,\n", "line 3: the caption is empty; write the caption or "
                                                                  "remove the row"),
    ("image,caption\nimages/red/0.png,fine\nimages/red/7.png,x\n", "line 3: image 'images/red/7.png' not found"),
    ("image,text\nimages/red/0.png,fine\n", "has no column 'caption' (its header: image,text)"),
    ("image,caption\nimages/red/0.png,a,b\n", "line 2 has 3 field(s), not 2"),
    ("image,caption\n", "names no image; write a header row 'image,caption', then a row per caption"),
])
def test_a_bad_row_of_a_csv_captions_file_is_one_line_naming_it(tmp_path, text, problem):
    root = tmp_path / "f"
    write_images(root)
    (root / "test.csv").write_text(text)
    with pytest.raises(BadFileError) as error:
        load_caption_source(str(root), "test")
    assert str(error.value).startswith(f"{root / 'test.csv'}: {problem}") and "\n" not in str(error.value)


def test_a_retrieval_webdataset_reports_its_damage_as_a_classification_one_does(tmp_path):
    root = write_webdataset(tmp_path / "wds", per_shard=2)  # shards 0 (s0, s1), 1 (s2, s3), 2 (s4)
    shard = root / "test" / "1.tar"
    with tarfile.open(shard, "w") as tar:
        add_member(tar, "s0000002.png", image_bytes(2))                          # no .txt
        add_member(tar, "s0000003.txt", caption_text(["no image"]))              # no image
        add_member(tar, "s0000005.png", image_bytes(5))
        add_member(tar, "s0000005.txt", b"\n  \n")                               # no caption: left out
        add_member(tar, "s0000006.jpg", encoded(noise(8, 6), "JPEG"))
        add_member(tar, "s0000006.txt", b"\xff\xfe bad")                         # not UTF-8
        add_member(tar, "s0000007.png", image_bytes(7))
        add_member(tar, "s0000007.txt", b"first\n\nsecond\r\n")
    (root / "test" / "nshards.txt").write_text("4\n")
    source = load_caption_source(str(root), "test")
    assert source.damaged == [f"shard {shard}: sample s0000002: no .txt member with its captions (it has .png)",
                              f"shard {shard}: sample s0000003: no image member (.webp, .png, .jpg or .jpeg; it has "
                              ".txt)",
                              f"shard {shard}: sample s0000006: member s0000006.txt is not UTF-8 text (byte 0)",
                              f"shard {root / 'test' / '3.tar'}: missing (the split has 4 shards)"]
    assert [e.class_id for e in source.examples] == ["s0000000", "s0000001", "s0000007", "s0000004"]
    assert source.captions[2] == ["first", "second"] and source.uncaptioned == [f"{shard} member s0000005.png"]
    assert source.warnings()[1:] == [f"skipped {line}" for line in source.damaged]
    entry = {"source": str(root), "split": "test", "on_bad_image": "fail"}
    with pytest.raises(UserError, match=r"^captions.x.on_bad_image is 'fail' and shard .*1.tar: sample s0000002: no "
                                        r".txt member"):
        fetching.open_source("captions.x", entry, load_caption_source)
    with tarfile.open(root / "test" / "0.tar") as tar:
        offset = tar.getmember("s0000001.png").offset_data
    (root / "test" / "0.tar").write_bytes((root / "test" / "0.tar").read_bytes()[:offset + 10])
    cut = load_caption_source(str(root), "test")
    assert cut.damaged[0] == (f"shard {root / 'test' / '0.tar'}: truncated after sample s0000000 (unexpected end of "
                              "data); its later samples are lost")
    assert [e.class_id for e in cut.examples] == ["s0000000", "s0000007", "s0000004"]


def test_a_retrieval_webdataset_is_no_classification_dataset_and_the_other_way_round(tmp_path):
    root = write_webdataset(tmp_path / "wds")
    with pytest.raises(UserError, match=r"dataset_type.txt says 'retrieval': only classification webdatasets .*; "
                                        r"use a zero-shot classification dataset \(a retrieval one: list it under "
                                        r"captions\)$"):
        sources.load_source(str(root), "test")
    (root / "dataset_type.txt").unlink()
    with pytest.raises(UserError) as error:
        load_caption_source(str(root), "test")
    assert str(error.value) == (f"{root} has no dataset_type.txt (so: classification): a caption dataset is a "
                                "retrieval webdataset (a .txt of captions in each sample, dataset_type.txt saying "
                                "'retrieval'); use one (a classification one: list it under datasets)")
    (root / "dataset_type.txt").write_text("classification\n")
    with pytest.raises(UserError, match=r"dataset_type.txt says 'classification': a caption dataset is a retrieval"):
        webdataset.WebdatasetTable(root, "test", kind=webdataset.RETRIEVAL)


# -- fetch_captions -----------------------------------------------------------------------------------------------

def run_fetch(tmp_path: Path, source: Path, name: str = "run", **entry) -> Path:
    from stages import fetch_captions

    params = {"captions": {"mine": {"source": str(source), "split": "test", "max_images": None, "seed": 0,
                                    "on_bad_image": "skip", **entry}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / name / "subset"
    fetch_captions.main(["--params", str(tmp_path / "params.yaml"), "--captions", "mine", "--out", str(out),
                         "--metrics", str(tmp_path / name / "fetch.json")])
    return out


def subset_files(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


def test_the_four_layouts_of_one_dataset_give_byte_identical_subsets(tmp_path, capsys):
    written = {}
    for kind in KINDS:
        out = run_fetch(tmp_path, WRITERS[kind](tmp_path / "sources" / kind), name=kind)
        written[kind] = subset_files(out)
        assert subset.read_classes(out) == [{"id": key, "name": key} for key in KEYS[kind]]
        assert f"fetch_captions mine: 5 test images, 10 captions (1 to 3 an image) -> {out}" in capsys.readouterr().out
    for kind in KINDS:
        assert sorted(written[kind]) == ["captions.json", "classes.json", "images/test/000000.png",
                                         "images/test/000001.png", "images/test/000002.png", "images/test/000003.png",
                                         "images/test/000004.png", "test.csv"]
        assert {name: data for name, data in written[kind].items() if name != "classes.json"} == \
            {name: data for name, data in written["jsonl"].items() if name != "classes.json"}, kind
    out = tmp_path / "jsonl" / "subset"
    assert subset.split_names(out) == ("test",)
    paths, labels = subset.read_split(out, "test")
    assert labels.tolist() == [0, 1, 2, 3, 4] and [path.read_bytes() for path in paths] == [image_bytes(n)
                                                                                          for n in range(5)]
    assert read_captions(out) == [texts for _, texts in DATA]
    metrics = json.loads((tmp_path / "webdataset" / "fetch.json").read_text())
    assert {key: value for key, value in metrics.items() if key != "skipped_by_reason"} == {
        "images_found": 5, "captions_found": 10, "images_checked": 5, "images_skipped": 0,
        "images_without_captions": 0, "images": 5, "captions": 10, "captions_per_image_min": 1,
        "captions_per_image_max": 3, "ignored_files": 0, "damaged_samples": 0}


def test_max_images_keeps_a_seeded_choice_in_source_order_each_image_with_all_its_captions(tmp_path):
    data = [(f"images/{n:02d}.png", [f"caption {n}"] * (1 + n % 3)) for n in range(12)]
    root = write_jsonl(tmp_path / "f", data)
    chosen = {}
    for seed in (0, 0, 1):
        out = run_fetch(tmp_path, root, name=f"seed{seed}", max_images=4, seed=seed)
        keys = [entry["id"] for entry in subset.read_classes(out)]
        assert len(keys) == 4 and keys == sorted(keys)  # source order
        assert read_captions(out) == [dict(data)[key] for key in keys]
        assert [path.read_bytes() for path in subset.read_split(out, "test")[0]] == \
            [(root / key).read_bytes() for key in keys]
        assert chosen.setdefault(seed, keys) == keys  # the same seed, the same images
    assert chosen[0] != chosen[1]
    metrics = json.loads((tmp_path / "seed1" / "fetch.json").read_text())
    assert (metrics["images_found"], metrics["captions_found"], metrics["images"], metrics["captions"]) == (
        12, 24, 4, sum(map(len, read_captions(out))))


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_a_bad_image_is_skipped_with_its_captions_and_counted_or_stops_the_run(tmp_path, kind, capsys):
    root = WRITERS[kind](tmp_path / kind, bad=2)
    out = run_fetch(tmp_path, root)
    assert read_captions(out) == [texts for index, (_, texts) in enumerate(DATA) if index != 2]
    metrics = json.loads((tmp_path / "run" / "fetch.json").read_text())
    assert (metrics["images_checked"], metrics["images_skipped"], metrics["images"], metrics["captions"]) == \
        (5, 1, 4, 8)
    assert metrics["skipped_by_reason"]["undecodable"] == 1 and sum(metrics["skipped_by_reason"].values()) == 1
    where = root / DATA[2][0] if kind == "jsonl" else f"{root} test example 2"
    assert f"warning: skipped image {where}: " in capsys.readouterr().err
    with pytest.raises(UserError) as error:
        run_fetch(tmp_path, root, on_bad_image="fail")
    assert str(error.value).startswith(f"captions.mine.on_bad_image is 'fail' and image {where} is ") and \
        str(error.value).endswith("replace or remove it, or set captions.mine.on_bad_image: skip") and \
        "\n" not in str(error.value)


def test_fewer_than_two_usable_images_is_one_line(tmp_path):
    root = write_jsonl(tmp_path / "f", DATA[:2], bad=1)
    with pytest.raises(UserError) as error:
        run_fetch(tmp_path, root)
    assert str(error.value) == ("captions.mine.source: 1 usable image(s) with a caption (1 skipped as bad); retrieval "
                                "needs at least 2: add images")


def test_a_bad_captions_file_stops_fetch_captions_naming_the_param(tmp_path):
    root = write_jsonl(tmp_path / "f")
    (root / "test.jsonl").write_text('{"image": "images/red/0.png", "caption": ""}\n')
    with pytest.raises(UserError, match=r"^captions.mine.source: .*test.jsonl: line 1: the caption is empty"):
        run_fetch(tmp_path, root)


@pytest.mark.parametrize("damage, problem", [
    (lambda c: {"captions": c["captions"][:-1]}, "'captions' is not a list of one list of captions per image of "
                                                 "test.csv (5)"),
    (lambda c: {"captions": [*c["captions"][:-1], []]}, "'captions' entry 4 is [], not a non-empty list of non-empty "
                                                        "texts"),
    (lambda c: {"captions": [["x", " "], *c["captions"][1:]]}, "'captions' entry 0 is ['x', ' '], not a non-empty"),
    (lambda c: {"captions": [[1], *c["captions"][1:]]}, "'captions' entry 0 is [1], not a non-empty"),
    (lambda c: {"texts": c["captions"]}, "has no field 'captions'"),
])
def test_a_damaged_captions_json_names_the_file_and_the_fix(tmp_path, damage, problem):
    out = run_fetch(tmp_path, write_csv(tmp_path / "f"))
    path = out / "captions.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    with pytest.raises(BadFileError) as error:
        read_captions(out, fix="rebuild it")
    assert str(error.value).startswith(f"{path}: {problem}") and str(error.value).endswith("; rebuild it")


# -- the demo's caption set -------------------------------------------------------------------------------------

def test_the_demos_caption_set_is_deterministic_and_reads_back_as_a_caption_source(tmp_path):
    assert shapes.write_caption_set(tmp_path / "a", per_class=2, captions_per_image=3, seed=0, size=16) == (98, 294)
    shapes.write_caption_set(tmp_path / "b", per_class=2, captions_per_image=3, seed=0, size=16)
    files = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*") if path.is_file())
    assert len(files) == 99 and files == sorted(path.relative_to(tmp_path / "b")
                                                for path in (tmp_path / "b").rglob("*") if path.is_file())
    assert all((tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes() for file in files)
    source = load_caption_source(str(tmp_path / "a"), "test")
    classes = shapes.all_classes()
    assert [e.class_id for e in source.examples] == [f"images/{shapes.folder_name(*pair)}/{index:04d}.png"
                                                     for pair in classes for index in range(2)]
    assert all(len(texts) == 3 for texts in source.captions) and source.ignored_files == []
    for (colour, shape), texts in zip([pair for pair in classes for _ in range(2)], source.captions):
        assert all(colour in text and shape in text for text in texts), texts
    # a stream of its own: the evaluation set's images are not these
    shapes.write_image_folder(tmp_path / "eval", per_class=1, seed=0, size=16)
    assert (tmp_path / "eval" / "red_circle" / "0000.png").read_bytes() != \
        (tmp_path / "a" / "images" / "red_circle" / "0000.png").read_bytes()
    assert shapes.write_caption_set(tmp_path / "c", 1, 1, seed=1, size=16) == (49, 49)
    assert (tmp_path / "c" / "images" / "red_circle" / "0000.png").read_bytes() != \
        (tmp_path / "a" / "images" / "red_circle" / "0000.png").read_bytes()


def test_the_demo_params_hold_the_caption_sets_sizes():
    demo = yaml.safe_load((Path(__file__).resolve().parents[1] / "demo" / "params.yaml").read_text())
    assert (demo["generate"]["captioned_per_class"], demo["generate"]["captions_per_image"]) == (4, 5)
