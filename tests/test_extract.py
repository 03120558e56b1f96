"""Image extraction: lean preprocessing equals the processor, int8 stays close to fp32, batch size
and sharding never change the features, and an interrupted extraction resumes from its shards."""

import copy
import dataclasses
import pickle
import subprocess
from datetime import datetime

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPImageProcessorPil

from clip_study.data import shards
from clip_study.data.features import load_features
from clip_study.data.images import open_rgb
from clip_study.data.sources import scan_folder
from clip_study.data.subset import read_split, split_indices, write_subset
from clip_study.demo import tinyclip
from clip_study.errors import UserError
from clip_study.files import read_json
from clip_study.metrics_files.extract import ExtractMetrics, ExtractSpeed
from clip_study.evaluation.similarity import l2_normalize
from clip_study.models import encoding, loading, pixels
from clip_study.models.precision import resolve_precision
from clip_study.models.speed import speed_line
from tests.dvc_repo import ROOT, extract_command, write_extract_params

SIZES = [(32, 32), (37, 53), (300, 200), (23, 300), (64, 48), (1, 1)]


def random_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("processor", [tinyclip.image_processor(32), CLIPImageProcessor()],
                         ids=["tiny-32px", "vit-b-32-224px"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_lean_preprocessing_equals_the_processor_bit_for_bit(processor, size):
    lean = pixels.lean_preprocessor(processor)
    assert lean is not None
    image = random_image(*size)
    expected = processor(images=[image], return_tensors="np")["pixel_values"][0]
    got = lean(image)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("change", [
    {"do_center_crop": False, "size": {"height": 32, "width": 32}},   # a fixed-size resize
    {"crop_size": {"height": 48, "width": 48}},                      # crop larger than the resize: pads
    {"do_normalize": False},
    {"do_resize": False},
])
def test_lean_preprocessing_is_refused_for_a_config_it_does_not_reproduce(change):
    processor = tinyclip.image_processor(32)
    for key, value in change.items():
        setattr(processor, key, value)
    assert pixels.lean_preprocessor(processor) is None
    image = random_image(40, 30)
    preprocessing = pixels.choose_preprocessing(processor, [image])
    assert preprocessing.name != "lean"
    assert np.array_equal(preprocessing(image), processor(images=[image], return_tensors="np")["pixel_values"][0])


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    name = str(tiny_clip_dir)
    return loading.load_model(name, torch.device("cpu")), loading.load_image_processor(name)


@pytest.fixture(scope="module")
def image_paths(shape_folder):
    return [example.path for example in scan_folder(shape_folder).examples[:60]]


def test_extraction_is_identical_for_batch_sizes_1_and_7_and_with_workers(tiny, image_paths):
    model, processor = tiny
    one = encoding.encode_images(model, processor, image_paths, batch_size=1)
    seven = encoding.encode_images(model, processor, image_paths, batch_size=7, workers=2)
    assert one.shape == (len(image_paths), model.config.projection_dim)
    assert np.array_equal(one, seven)


def test_the_uint8_path_gives_the_float_paths_features(tiny, image_paths):
    """Workers send uint8 crops and the table is applied to the batch: the same pixels and features as
    applying it per image in the workers (the path before uint8)."""
    model, processor = tiny
    lean = pixels.lean_preprocessor(processor)
    images = [open_rgb(path) for path in image_paths]
    floats = torch.stack([torch.from_numpy(lean(image)) for image in images])
    crops = torch.stack([torch.from_numpy(lean.crop(image)) for image in images])
    assert crops.dtype == torch.uint8 and crops.element_size() * 4 == floats.element_size()
    assert torch.equal(lean.normalise(crops), floats)
    assert pickle.loads(pickle.dumps(lean.crop)).__self__._flat_tables == {}  # workers never get a device table
    by_float = np.concatenate([encoding.image_encoder(model, "fp32")(batch).numpy() for batch in floats.split(16)])
    assert np.array_equal(encoding.encode_images(model, processor, image_paths, batch_size=16), by_float)


class ShiftedProcessor(CLIPImageProcessorPil):
    """A processor whose config the lean path reproduces but whose pixels differ (as a backend that
    resizes differently would)."""

    def to_dict(self):
        return {**super().to_dict(), "image_processor_type": "CLIPImageProcessor"}

    def preprocess(self, images, **kwargs):
        out = super().preprocess(images, **kwargs)
        out["pixel_values"] = np.asarray(out["pixel_values"]) + np.float32(0.01)
        return out


def test_the_lean_path_falls_back_to_a_processor_it_does_not_reproduce(tiny, image_paths):
    model, _ = tiny
    processor = ShiftedProcessor(**tinyclip.image_processor(32).to_dict())
    assert pixels.lean_preprocessor(processor) is not None  # the config alone would pass
    warnings = []
    images = [open_rgb(path) for path in image_paths[:4]]
    preprocessing = pixels.choose_preprocessing(processor, images, warn=warnings.append)
    assert preprocessing.name == "ShiftedProcessor"
    assert warnings == ["the lean preprocessing differs from ShiftedProcessor by up to 0.01 on the first 4 images: "
                        "calling the processor itself (slower, same features as a notebook)"]
    expected = torch.stack([torch.from_numpy(processor(images=[image], return_tensors="np")["pixel_values"][0])
                            for image in (open_rgb(path) for path in image_paths)])
    by_processor = encoding.image_encoder(model, "fp32")(expected).numpy()
    assert np.array_equal(encoding.encode_images(model, processor, image_paths, batch_size=60), by_processor)
    # the unshifted processor passes the check silently
    assert pixels.choose_preprocessing(tinyclip.image_processor(32), images, warn=warnings.append).name == "lean"
    assert len(warnings) == 1


@pytest.mark.parametrize("threshold,half", [(-1.0, True), (1.5, False)])
def test_half_weights_are_used_only_where_they_stay_close_to_fp32(tiny, image_paths, monkeypatch, threshold, half):
    """The GPU's half-weights check, run on the cpu's bf16: used above the threshold, else fp32 weights
    under autocast, and the log says which."""
    model, processor = tiny
    monkeypatch.setattr(encoding, "HALF_WEIGHTS_MIN_COSINE", threshold)
    crops = torch.stack([torch.from_numpy(pixels.lean_preprocessor(processor).crop(open_rgb(p))) for p in image_paths])
    encoder = encoding.ImageEncoder(model, "fp32", pixels.lean_preprocessor(processor).normalise)
    fp32 = encoder(crops)
    lines = []
    assert encoder._use_half_weights("bf16", crops[:8], lines.append) is half
    assert (encoder.input_dtype == torch.bfloat16) is half
    assert lines[0].startswith("bf16 weights: " + ("features within cosine" if half else "cosine"))
    assert next(model.parameters()).dtype == torch.float32  # a copy was cast, never the model
    features = encoder(crops)
    if half:
        assert torch.nn.functional.cosine_similarity(features, fp32).min() > 0.99
    else:
        assert torch.equal(features, fp32)


def test_batches_never_span_two_splits():
    assert pixels.batch_indices([5, 0, 3], 2) == [[0, 1], [2, 3], [4], [5, 6], [7]]
    assert pixels.batch_indices([4], 4) == [[0, 1, 2, 3]]


def test_int8_features_stay_within_cosine_099_of_fp32(tiny, image_paths):
    model, processor = tiny
    fp32 = encoding.encode_images(model, processor, image_paths, batch_size=16)
    int8 = encoding.encode_images(model, processor, image_paths, batch_size=16, precision="int8")
    cosine = (l2_normalize(fp32) * l2_normalize(int8)).sum(axis=1)
    assert cosine.min() > 0.99
    assert not np.array_equal(fp32, int8)  # the int8 path really ran
    assert next(model.parameters()).dtype == torch.float32  # and quantised a copy, not the model


@pytest.mark.parametrize("precision,device,fragment", [
    ("int4", "cpu", "must be one of auto, fp32, int8, fp16, bf16"),
    ("int8", "cuda", "'int8' runs on the cpu only"),
])
def test_bad_precision_is_a_one_line_error(precision, device, fragment):
    with pytest.raises(UserError, match=fragment):
        resolve_precision(precision, torch.device(device))


def test_auto_precision_is_fp32_on_cpu_and_fp16_on_cuda():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"


def test_shards_assemble_to_the_unsharded_features_and_resume_only_what_is_missing(tmp_path, tiny, image_paths):
    model, processor = tiny
    dim = model.config.projection_dim
    preprocessing, encode = encoding.prepare_run(model, processor, image_paths, "fp32")
    labels = np.arange(len(image_paths)) % 7
    plan = shards.plan("train", image_paths, shard_size=16, settings="k")
    assert [len(s) for s in plan] == [16, 16, 16, 12]

    def extract(todo):
        todo_paths = [p for s in todo for p in image_paths[s.start:s.stop]]
        batches = pixels.pixel_batches(todo_paths, preprocessing.in_worker, batch_size=5, workers=0)
        shards.write(tmp_path / "work", todo, encoding.encode_batches(encode, batches, len(todo_paths)))

    extract([plan[0], plan[2]])  # as if a run died after writing shards 0 and 2
    (tmp_path / "work" / "stale.npy.tmp").write_bytes(b"half a shard")
    shards.prune(tmp_path / "work", plan)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == sorted([plan[0].name, plan[2].name])
    assert shards.missing(tmp_path / "work", plan, dim) == [plan[1], plan[3]]
    shard = tmp_path / "work" / plan[2].name
    shard.write_bytes(shard.read_bytes()[:-4])  # cut short, as by a full disk: encoded again, never assembled
    assert shards.missing(tmp_path / "work", plan, dim) == [plan[1], plan[2], plan[3]]
    extract(shards.missing(tmp_path / "work", plan, dim))
    shards.assemble(tmp_path / "work", plan, labels, dim, tmp_path / "train.npz")

    features, got_labels = load_features(tmp_path / "train.npz")
    assert np.array_equal(features, encoding.encode_images(model, processor, image_paths, batch_size=5))
    assert np.array_equal(got_labels, labels)
    # the npz carries no timestamps: assembling again gives the same bytes
    first = (tmp_path / "train.npz").read_bytes()
    shards.assemble(tmp_path / "work", plan, labels, dim, tmp_path / "train.npz")
    assert (tmp_path / "train.npz").read_bytes() == first


def test_a_shard_key_changes_with_the_image_bytes_and_the_settings(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        random_image(8, 8, seed=i).save(paths[-1])
    before = shards.plan("test", paths, 2, "settings-a")
    assert shards.plan("test", paths, 2, "settings-a") == before
    assert [s.key for s in shards.plan("test", paths, 2, "settings-b")] != [s.key for s in before]
    random_image(8, 8, seed=9).save(paths[2])
    after = shards.plan("test", paths, 2, "settings-a")
    assert after[0] == before[0] and after[1].key != before[1].key


def test_the_runs_shards_are_named_by_precision_and_encoder_mode(tmp_path, tiny, image_paths):
    """A run at another precision must not resume from the shards of this one."""
    from clip_study.models.extraction import plan_extraction

    model, processor = tiny
    splits = {"train": (image_paths[:8], np.zeros(8, dtype=np.int64))}
    names = {precision: [shard.name for shard in plan_extraction(model, processor, splits, tmp_path / "features",
                                                                 precision, 4, log=lambda line: None).plans["train"]]
             for precision in ("fp32", "int8")}
    assert len(names["fp32"]) == 2 and set(names["fp32"]).isdisjoint(names["int8"])


def test_model_fingerprint_follows_the_weights(tiny):
    model, _ = tiny
    other = tinyclip.random_small_clip(["a photo of a red circle"], seed=5)[0]
    assert loading.model_fingerprint(model) == loading.model_fingerprint(model)
    assert loading.model_fingerprint(model) != loading.model_fingerprint(other)
    text_changed = copy.deepcopy(model)
    with torch.no_grad():
        text_changed.text_projection.weight.add_(1.0)
    assert loading.model_fingerprint(text_changed) != loading.model_fingerprint(model)
    image_tower = loading.model_fingerprint(model.vision_model, model.visual_projection)
    assert loading.model_fingerprint(text_changed.vision_model, text_changed.visual_projection) == image_tower






@pytest.fixture(scope="module")
def subset(tmp_path_factory, shape_folder):
    """A written subset of 49 classes x 4 images (98 train / 98 test)."""
    out = tmp_path_factory.mktemp("subset") / "subset"
    examples = scan_folder(shape_folder).examples
    classes = sorted({e.class_id for e in examples})
    labels = np.array([classes.index(e.class_id) for e in examples])
    train, test = split_indices(labels, 0.5, seed=0)
    write_subset(out, examples, labels, [{"id": c, "name": c} for c in classes], {"train": train, "test": test})
    return out


def assert_features_of(subset, features_dir, model_dir, batch_size):
    """The stage's npz files hold the subset's labels and the features of an in-memory encoding."""
    model = loading.load_model(str(model_dir), torch.device("cpu"))
    processor = loading.load_image_processor(str(model_dir))
    for split in ("train", "test"):
        paths, labels = read_split(subset, split)
        features, got_labels = load_features(features_dir / f"{split}.npz")
        assert np.array_equal(got_labels, labels)
        assert np.array_equal(features, encoding.encode_images(model, processor, paths, batch_size=batch_size))


def test_the_stage_logs_the_measured_speed_apart_and_its_metrics_file_holds_only_what_a_rerun_reproduces(
        tmp_path, tiny_clip_dir, subset, capsys):
    """The stage in-process, twice on the same subset: extract.json is the same bytes both times and holds no
    measured time; the speed and the machine go to the --speed log (untracked in the pipelines) and are printed."""
    from stages import extract as stage

    write_extract_params(tmp_path / "params.yaml", tiny_clip_dir, batch_size=16, workers=0, threads=1)
    threads = torch.get_num_threads()  # the stage sets the process's threads
    try:
        for run in ("first", "second"):
            stage.main(["--params", str(tmp_path / "params.yaml"), "--subset", str(subset),
                        "--out", str(tmp_path / run / "features"), "--metrics", str(tmp_path / run / "extract.json"),
                        "--speed", str(tmp_path / run / "speed" / "clip.json")])
    finally:
        torch.set_num_threads(threads)
    first = tmp_path / "first" / "extract.json"
    assert first.read_bytes() == (tmp_path / "second" / "extract.json").read_bytes()
    metrics = read_json(first)
    assert list(metrics) == [field.name for field in dataclasses.fields(ExtractMetrics)]
    assert not {"seconds", "images_per_second", "images_encoded", "measured"} & set(metrics)
    assert metrics["images"] == 196 and metrics["device"] == "cpu" and metrics["engine"] == "local"

    speed = ExtractSpeed.from_json(read_json(tmp_path / "first" / "speed" / "clip.json"))
    assert speed.model == "clip" and speed.checkpoint == str(tiny_clip_dir)
    assert speed.images_encoded == 196 and speed.seconds > 0 and speed.images_per_second > 0
    assert (speed.device, speed.gpu, speed.precision, speed.engine) == ("cpu", None, "fp32", "local")
    assert (speed.threads, speed.workers, speed.batch_size) == (1, 0, 16)
    assert speed.cpu and speed.platform and speed.torch == torch.__version__ and speed.cores >= 1
    assert datetime.fromisoformat(speed.measured).tzinfo is not None
    printed = capsys.readouterr().out
    assert f"extract clip: {speed_line(speed)} -> {tmp_path / 'first' / 'speed' / 'clip.json'}" in printed


@pytest.mark.slow  # the stage as a subprocess
def test_the_stage_writes_features_in_shards_and_removes_its_work_folder(tmp_path, tiny_clip_dir, subset):
    write_extract_params(tmp_path / "params.yaml", tiny_clip_dir, batch_size=8, shard_size=10, workers=1, threads=1)
    done = subprocess.run(extract_command(tmp_path / "params.yaml", subset, tmp_path / "features"),
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 threads, 1 workers, fp32 weights, head per row, lean preprocessing, batches of 8" in done.stdout
    assert not (tmp_path / "features.partial").exists()
    assert_features_of(subset, tmp_path / "features", tiny_clip_dir, batch_size=3)


@pytest.fixture(scope="module")
def big_subset(tmp_path_factory, shape_folder):
    """392 images (each shape image twice): long enough to interrupt mid-way."""
    out = tmp_path_factory.mktemp("big_subset") / "subset"
    examples = scan_folder(shape_folder).examples * 2
    classes = sorted({e.class_id for e in examples})
    labels = np.array([classes.index(e.class_id) for e in examples])
    train, test = split_indices(labels, 0.25, seed=0)
    write_subset(out, examples, labels, [{"id": c, "name": c} for c in classes], {"train": train, "test": test})
    return out


@pytest.mark.slow  # the stage as a subprocess, killed and rerun
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_a_killed_extraction_resumes_and_gives_the_uninterrupted_features(tmp_path, tiny_clip_dir, big_subset,
                                                                          signal_name):
    import signal
    import time

    write_extract_params(tmp_path / "params.yaml", tiny_clip_dir, batch_size=4, shard_size=32, workers=0, threads=1)
    command = extract_command(tmp_path / "params.yaml", big_subset, tmp_path / "features")
    work = tmp_path / "features.partial"
    # Ctrl-C as in a terminal: a shell starts a background job with SIGINT ignored, and a child inherits that
    # (as CI run in the background did, and the stage then ran to the end), so the child restores the default
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list(work.glob("train-*.npy"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(getattr(signal, signal_name))
    process.communicate()
    assert process.returncode != 0, "extraction finished before it could be interrupted"
    kept = sorted(work.glob("train-*.npy"))
    assert len(kept) >= 3
    assert not (tmp_path / "features" / "train.npz").exists()  # nothing a later stage could take as complete

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming train: {len(kept)} of 10 shards already encoded" in done.stdout
    assert not work.exists()

    assert_features_of(big_subset, tmp_path / "features", tiny_clip_dir, batch_size=64)
