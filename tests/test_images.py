"""Real users' image folders: bad files are skipped (or fail the run) with a clear line, unusual modes
become the RGB image CLIP's processor would make, and the folder layout quirks are handled.

Everything is generated here with PIL and numpy; the 10,000 x 10,000 images are cheap (a flat JPEG,
a PNG of one repeated row) and decode at reduced size.
"""

import inspect
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from clip_study.data import images, sources
from clip_study.pipeline import fetching
from stages import fetch
from tests.conftest import one_dataset

ROOT = Path(__file__).resolve().parents[1]


# -- generating files ---------------------------------------------------------------------------------

def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(size: int = 16, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def grey_png(width: int, height: int, value: int = 128) -> bytes:
    """An 8-bit greyscale PNG written by hand (PIL would need the whole image in memory to save it)."""
    rows = (b"\x00" + bytes([value]) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 1))
            + png_chunk(b"IEND", b""))


def bomb_png() -> bytes:
    """A PNG header claiming 20,000 x 20,000 pixels (400 Mpx): PIL refuses it on opening."""
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))


def truncated_jpeg() -> bytes:
    whole = encoded(noise(64), "JPEG")
    return whole[:len(whole) // 2]


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data is overwritten: PIL identifies it but cannot decode it."""
    whole = bytearray(encoded(noise(64)))
    whole[100:300] = b"\x00" * 200
    return bytes(whole)


def palette_with_transparency() -> Image.Image:
    """Left half index 0 (transparent green), right half index 1 (opaque red)."""
    image = Image.fromarray(np.repeat([[0, 0, 1, 1]], 4, axis=0).astype(np.uint8), mode="P")
    image.putpalette([0, 255, 0, 255, 0, 0] + [0] * 762)
    return image


MODE_FILES = {  # name -> (bytes, expected RGB at (0, 0))
    "rgba.png": (lambda: encoded(Image.new("RGBA", (4, 4), (255, 0, 0, 0))), (255, 255, 255)),
    "la.png": (lambda: encoded(Image.new("LA", (4, 4), (0, 0))), (255, 255, 255)),
    "p_transparent.png": (lambda: encoded(palette_with_transparency(), transparency=0), (255, 255, 255)),
    "i16.png": (lambda: encoded(Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))), (128, 128, 128)),
    "grey.png": (lambda: encoded(Image.new("L", (4, 4), 77)), (77, 77, 77)),
    "bits.png": (lambda: encoded(Image.fromarray(np.eye(4, dtype=bool))), (255, 255, 255)),
    "float.tif": (lambda: encoded(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)), "TIFF"), (128, 128, 128)),
    "cmyk.jpg": (lambda: encoded(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95), (255, 0, 0)),
}


def write(path: Path, content: bytes | Image.Image, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else encoded(content, fmt))
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """An image folder with every kind of trouble (see EXPECTED for what becomes of each)."""
    base = tmp_path_factory.mktemp("messy")
    root, outside = base / "images", base / "outside"
    cat = root / "cat"
    write(cat / "good1.jpg", noise(16, 1), "JPEG")
    write(cat / "good2.png", noise(16, 2))
    write(cat / "GOOD3.JPG", noise(16, 3), "JPEG")                     # uppercase suffix
    write(cat / "png_named.jpg", noise(16, 4))                          # a PNG with a .jpg suffix
    write(cat / "nested" / "deeper" / "n.png", noise(16, 5))            # nested sub-folders
    (cat / "link.png").symlink_to(write(outside / "linked.png", noise(16, 6)))  # symlink to an image
    (cat / "broken.png").symlink_to(outside / "missing.png")             # symlink to nothing
    write(cat / "truncated.jpg", truncated_jpeg())
    write(cat / "zero.jpg", b"")
    write(cat / "text.jpg", b"this is not an image\n")
    write(cat / "notes.txt", b"stray notes")
    write(cat / "labels.csv", b"file,label\n")
    write(cat / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    write(cat / ".thumbnails" / "t.png", noise(8))                      # hidden folder
    dog = root / "dog"
    for name, (content, _) in MODE_FILES.items():
        write(dog / name, content())
    write(dog / "huge.jpg", Image.new("L", (10_000, 10_000), 200), "JPEG")  # 100 Mpx, 1 MB
    write(dog / "bomb.png", bomb_png())
    write(dog / "corrupt.png", corrupt_png())
    write(root / "empty_class" / ".DS_Store", b"\x00")
    write(root / "empty_class" / "readme.txt", b"nothing here yet")
    write(root / "lonely" / "one.png", noise(16, 7))
    write(root / "lonely" / "truncated.png", encoded(noise(64, 8))[:300])
    real_class = outside / "real_class"
    write(real_class / "a.png", noise(16, 9))
    write(real_class / "b.png", noise(16, 10))
    (real_class / "again").symlink_to(real_class)                       # a symlink loop
    (root / "linked").symlink_to(real_class)                            # a symlinked class folder
    write(root / ".hidden_class" / "x.png", noise(8))
    write(root / "README.txt", b"my images")                            # a file outside the class folders
    return root


# per file: None = used, else the skip reason
EXPECTED = {
    "cat/good1.jpg": None, "cat/good2.png": None, "cat/GOOD3.JPG": None, "cat/png_named.jpg": None,
    "cat/nested/deeper/n.png": None, "cat/link.png": None, "cat/broken.png": "unreadable",
    "cat/truncated.jpg": "truncated", "cat/zero.jpg": "empty", "cat/text.jpg": "not_an_image",
    **{f"dog/{name}": None for name in MODE_FILES}, "dog/huge.jpg": None,
    "dog/bomb.png": "too_large", "dog/corrupt.png": "undecodable",
    "lonely/one.png": None, "lonely/truncated.png": "truncated",
    "linked/a.png": None, "linked/b.png": None,
}


def run_fetch(tmp_path: Path, dataset: Path, **changes):
    params = {"datasets": one_dataset(str(dataset), **{"test_size": 0.5, **changes})}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", "stages.fetch", "--params", str(tmp_path / "params.yaml"),
                           "--out", str(tmp_path / "subset"), "--templates", str(tmp_path / "templates.json"),
                           "--metrics", str(tmp_path / "fetch.json")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def error_line(done) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


# -- the folder scan ------------------------------------------------------------------------------------

def test_scan_finds_images_recursively_follows_symlinks_and_skips_hidden(messy):
    source = sources.scan_folder(messy)
    found = {example.path.relative_to(messy).as_posix() for example in source.examples}
    assert found == set(EXPECTED)  # hidden files/folders, .txt/.csv and the loop's second visit are not there
    assert [e.class_id for e in source.examples] == sorted(e.class_id for e in source.examples)
    assert source.empty_classes == ["empty_class"]
    assert sorted(p.relative_to(messy).as_posix() for p in source.ignored_files) == \
        ["README.txt", "cat/labels.csv", "cat/notes.txt", "empty_class/readme.txt"]


def test_each_file_is_used_or_skipped_for_its_reason(messy):
    for name, reason in EXPECTED.items():
        problem = images.check_image(messy / name)
        assert (problem and problem.reason) == reason, (name, problem)


# -- conversion to RGB --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODE_FILES))
def test_unusual_modes_become_rgb(messy, name):
    image = images.open_rgb(messy / "dog" / name)
    assert image.mode == "RGB"
    np.testing.assert_allclose(image.getpixel((0, 0)), MODE_FILES[name][1], atol=3)  # cmyk.jpg: JPEG rounding


def test_transparency_and_bits_pixel_by_pixel(messy):
    palette = np.asarray(images.open_rgb(messy / "dog" / "p_transparent.png"))
    assert palette[0, 0].tolist() == [255, 255, 255] and palette[0, 3].tolist() == [255, 0, 0]
    bits = np.asarray(images.open_rgb(messy / "dog" / "bits.png"))
    assert bits[0, 0].tolist() == [255] * 3 and bits[0, 1].tolist() == [0] * 3
    half = images.open_rgb(encoded(Image.new("RGBA", (2, 2), (0, 0, 0, 128))))
    assert half.getpixel((0, 0)) == (127, 127, 127)  # black at half opacity over white


@pytest.mark.parametrize("mode, values, expected", [
    ("I;16", [0, 32768, 65535], [0, 128, 255]),
    ("I;16B", [0, 32768, 65535], [0, 128, 255]),
    ("I", [0, 32768, 70000], [0, 128, 255]),
    ("F", [0.0, 0.5, 1.0], [0, 128, 255]),
    ("F", [0.0, 100.0, 300.0], [0, 100, 255]),
])
def test_high_bit_depth_is_scaled_not_clipped(mode, values, expected):
    dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4", "F": "<f4"}[mode]
    image = Image.frombytes(mode, (3, 1), np.array(values, dtype=dtype).tobytes())
    assert np.asarray(images.to_rgb(image))[0, :, 0].tolist() == expected


def test_conversion_equals_the_clip_processors_own(messy):
    """For every mode transformers handles (all but 16-bit and float), our RGB is its convert_to_rgb's."""
    from transformers.image_transforms import convert_to_rgb
    if "alpha_composite" not in inspect.getsource(convert_to_rgb):
        pytest.skip("this transformers' convert_to_rgb drops alpha (4.x); ours composites on white as 5.x does")
    rgb_key = write(messy.parent / "rgb_key.png", encoded(noise(4), transparency=tuple(noise(4).getpixel((0, 0)))))
    for path in [*(messy / "dog" / name for name in MODE_FILES if name not in ("i16.png", "float.tif")), rgb_key]:
        with Image.open(path) as image:
            theirs = convert_to_rgb(image, return_numpy=True)
        np.testing.assert_array_equal(np.asarray(images.open_rgb(path)), theirs, err_msg=path.name)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise to display
    assert images.open_rgb(encoded(Image.new("RGB", (8, 4)), "JPEG", exif=exif)).size == (4, 8)


# -- large images ----------------------------------------------------------------------------------------

def test_huge_images_decode_at_reduced_size_quickly(messy):
    start = time.perf_counter()
    jpeg = images.open_rgb(messy / "dog" / "huge.jpg")  # DCT-scaled while decoding
    png = images.open_rgb(grey_png(10_000, 10_000))      # decoded, then box-reduced
    assert jpeg.size == png.size == (2500, 2500) and jpeg.mode == png.mode == "RGB"
    assert abs(jpeg.getpixel((100, 100))[0] - 200) <= 2 and png.getpixel((100, 100)) == (128, 128, 128)
    assert time.perf_counter() - start < 5


def test_decompression_bomb_is_a_clear_problem():
    problem = images.check_image(bomb_png())
    assert problem.reason == "too_large"
    assert str(problem) == "too large: 400 Mpx, over PIL's 179 Mpx decompression-bomb limit (downscale it)"
    with pytest.raises(images.BadImageError, match=r"image <\d+ bytes> is too large: 400 Mpx"):
        images.open_rgb(bomb_png())


def test_truncated_and_missing_files_raise_one_line_errors(tmp_path):
    with pytest.raises(images.BadImageError, match=r"truncated\.jpg is truncated: image file is truncated") as error:
        images.open_rgb(write(tmp_path / "truncated.jpg", truncated_jpeg()))
    assert "\n" not in str(error.value) and error.value.problem.reason == "truncated"
    with pytest.raises(images.BadImageError, match="is empty"):
        images.open_rgb(write(tmp_path / "zero.png", b""))
    with pytest.raises(images.BadImageError, match="is unreadable: FileNotFoundError"):
        images.open_rgb(tmp_path / "missing.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    broken = f"link.png is unreadable: a broken symlink to {tmp_path / 'gone.png'}"
    with pytest.raises(images.BadImageError, match=broken):
        images.open_rgb(tmp_path / "link.png")
    assert str(images.BadImageError("from a worker")) == "from a worker"  # DataLoader re-raises with one argument


# -- the fetch stage end to end ---------------------------------------------------------------------------

def test_fetch_skips_bad_images_and_counts_them(messy, tmp_path):
    done = run_fetch(tmp_path, messy)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    for name, reason in EXPECTED.items():
        if reason is not None:
            assert any(f"{messy / name} (class" in line and images.REASONS[reason] in line for line in warnings), name
    assert "warning: class folder 'empty_class' has no image files: left out" in warnings
    assert ("warning: class 'lonely' dropped: 1 usable image(s), 1 skipped as bad; "
            "a stratified train/test split needs at least 2") in warnings
    metrics = json.loads((tmp_path / "fetch.json").read_text())
    assert metrics == {
        "images_found": 25, "images_checked": 25, "images_skipped": 7, "images_used": 17,
        "train_images": metrics["train_images"], "test_images": 17 - metrics["train_images"],
        "skipped_by_reason": {"empty": 1, "not_an_image": 1, "truncated": 2, "undecodable": 1, "too_large": 1,
                              "unreadable": 1},
        "skipped_per_class": {"cat": 4, "dog": 2, "lonely": 1},
        "classes_found": 4, "classes_kept": 3, "dropped_classes": {"lonely": 1}, "empty_classes": ["empty_class"],
        "ignored_files": 4, "damaged_samples": 0,
    }
    assert json.loads((tmp_path / "templates.json").read_text()) == {"templates": None}  # a folder has none
    classes = json.loads((tmp_path / "subset" / "classes.json").read_text())
    assert [c["id"] for c in classes] == ["cat", "dog", "linked"]
    written = sorted((tmp_path / "subset" / "images").rglob("*.*"))
    assert len(written) == 17 and all(images.check_image(path) is None for path in written)


def test_fetch_fails_on_the_first_bad_image_when_asked(messy, tmp_path):
    line = error_line(run_fetch(tmp_path, messy, on_bad_image="fail", classes=["lonely", "linked"]))
    assert line == (f"error: datasets.shapes.on_bad_image is 'fail' and image {messy / 'lonely' / 'truncated.png'} "
                    "(class 'lonely') is truncated: image file is truncated; replace or remove it, "
                    "or set datasets.shapes.on_bad_image: skip")
    assert not (tmp_path / "subset").exists()


def test_a_listed_class_without_two_usable_images_fails(messy, tmp_path):
    line = error_line(run_fetch(tmp_path, messy, classes=["cat", "lonely"]))
    assert line == ("error: datasets.shapes.classes: class 'lonely' has 1 usable image(s), 1 skipped as bad; a "
                    "stratified train/test split needs at least 2: add images to it or remove it from "
                    "datasets.shapes.classes")


def test_too_few_classes_left_fails(tmp_path):
    root = tmp_path / "images"
    for n in range(2):
        write(root / "good" / f"{n}.png", noise(8, n))
    write(root / "bad" / "1.png", b"")
    write(root / "bad" / "2.png", noise(8))
    line = error_line(run_fetch(tmp_path, root))
    assert "datasets.shapes.source: 1 class(es) left with at least 2 usable images (dropped: {'bad': 1})" in line


def test_many_bad_images_are_listed_up_to_a_limit(tmp_path):
    root = tmp_path / "images"
    for class_id in ("a", "b"):
        for n in range(3):
            write(root / class_id / f"good{n}.png", noise(8, n))
        for n in range(13):
            write(root / class_id / f"empty{n:02d}.png", b"")
    done = run_fetch(tmp_path, root)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("warning: skipped image")]
    assert len(skipped) == fetching.WARNING_LINES
    assert (f"warning: ... and 6 more bad images skipped (26 in all, counted by reason and class in "
            f"{tmp_path / 'fetch.json'})") in done.stderr
    assert json.loads((tmp_path / "fetch.json").read_text())["skipped_by_reason"]["empty"] == 26


def test_hub_examples_go_through_the_same_checks(tmp_path, monkeypatch):
    examples = [sources.Example(class_id=c, data=content, name=f"some/dataset valid example {i}")
                for i, (c, content) in enumerate([("a", encoded(noise(8, 1))), ("a", encoded(noise(8, 2), "JPEG")),
                                                  ("a", truncated_jpeg()), ("b", encoded(noise(8, 3))),
                                                  ("b", b""), ("b", encoded(Image.new("RGBA", (8, 8))))])]
    monkeypatch.setattr(sources, "load_hub_examples", lambda dataset, split: examples)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"datasets": one_dataset(
        "some/dataset", split="valid", test_size=0.5)}))
    fetch.main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "subset"),
                "--templates", str(tmp_path / "templates.json"), "--metrics", str(tmp_path / "fetch.json")])
    metrics = json.loads((tmp_path / "fetch.json").read_text())
    assert metrics["images_used"] == 4 and metrics["skipped_per_class"] == {"a": 1, "b": 1}
    assert metrics["skipped_by_reason"]["truncated"] == metrics["skipped_by_reason"]["empty"] == 1
    suffixes = sorted(p.suffix for p in (tmp_path / "subset" / "images").rglob("*.*"))
    assert suffixes == [".jpg", ".png", ".png", ".png"]


def test_hub_images_stored_as_paths_or_bytes_are_both_read(tmp_path, monkeypatch):
    import datasets
    files = [write(tmp_path / f"{n}.png", noise(8, n)) for n in range(2)]
    table = datasets.Dataset.from_dict(
        {"image": [str(files[0]), {"bytes": encoded(noise(8, 5)), "path": None}, str(files[1])], "label": [0, 1, 1]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])}))
    monkeypatch.setattr(sources, "load_from_hub", lambda load, kind, name: table)
    examples = sources.load_hub_examples("some/dataset", "valid")  # rows, read when checked
    assert [(e.class_id, e.row, e.path, e.data) for e in examples] == [("a", 0, None, None), ("b", 1, None, None),
                                                                        ("b", 2, None, None)]
    usable, bad = sources.check_examples(examples)
    assert bad == [] and [(e.class_id, e.path, e.data is not None, e.where()) for e in usable] == [
        ("a", files[0], False, "some/dataset valid example 0"), ("b", None, True, "some/dataset valid example 1"),
        ("b", files[1], False, "some/dataset valid example 2")]
    assert all(images.check_image(e.source()) is None for e in examples)  # a row read alone
