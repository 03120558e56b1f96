"""Shift sets, up to their features: the shifts section's checks, matching shift classes to a dataset's (by id, by
name, by a map file), fetch_shift's test-only subset with its class_map.json, extract on it, and the demo's
generated shift sets (outlines, textured backgrounds, small shapes)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from clip_study.data import class_map
from clip_study.data.class_map import match_classes, read_class_map
from clip_study.data.subset import read_classes, split_names
from clip_study.demo import shapes
from clip_study.evaluation import shift
from clip_study.errors import BadFileError, UserError
from clip_study.pipeline import schema
from tests.conftest import one_dataset

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "demo" / "params.yaml").read_text())
MAIN = yaml.safe_load((ROOT / "params.yaml").read_text())


# -- the shifts section ---------------------------------------------------------------------------------------

def problems_of(params: dict) -> list[str]:
    return schema.problems(params)


def with_shifts(base: dict, shifts) -> dict:
    params = copy.deepcopy(base)
    params["shifts"] = shifts
    return params


def test_an_empty_shifts_section_is_fine_and_the_committed_ones_are_valid():
    assert MAIN["shifts"] == {} and problems_of(MAIN) == []
    assert problems_of(DEMO) == []
    assert set(DEMO["shifts"]) == set(shapes.SHIFT_SETS) and all(e["of"] == "shapes" for e in DEMO["shifts"].values())


def test_a_missing_key_is_one_line_giving_the_default_to_write():
    params = copy.deepcopy(DEMO)
    del params["shifts"]["small"]["class_map"]
    assert problems_of(params) == ["shifts.small.class_map: missing; add 'class_map: null' (the default: DVC needs "
                                   "every key a stage declares)"]
    del params["shifts"]["noisy"]["of"]
    assert "shifts.noisy.of: missing; add the short name of an entry of datasets (e.g. 'tiny_imagenet')" in \
        problems_of(params)


def test_of_must_name_a_dataset():
    params = copy.deepcopy(DEMO)
    params["shifts"]["outline"]["of"] = "shape"
    assert problems_of(params) == ["shifts.outline.of: 'shape' is not an entry of datasets (shapes, shape_only); "
                                   "name one of them"]


def test_a_shift_may_not_take_a_datasets_short_name():
    params = with_shifts(DEMO, {"shape_only": DEMO["shifts"]["outline"]})
    assert problems_of(params) == ["shifts.shape_only: the short name is also a dataset's; rename the shift set "
                                   "(both are fetched into data/datasets/<short name>/)"]


@pytest.mark.parametrize("shifts, expected", [
    ({"imagenet-r": {"of": "shapes"}}, "shifts.imagenet-r: the short name must be a letter then up to 39 letters, "
                                       "digits or '_', e.g. imagenet_r (it names stages, folders and metric keys)"),
    ({"outline": {**DEMO["shifts"]["outline"], "classes": "all"}}, "shifts.outline.classes: unknown key"),
    ({"outline": {**DEMO["shifts"]["outline"], "max_per_class": 1}},
     "shifts.outline.max_per_class: 1 must be null (all images) or a whole number >= 2"),
    ({"outline": "data/shift_sets/outline"}, "shifts.outline: 'data/shift_sets/outline' must be a mapping of its keys"),
])
def test_a_bad_entry_is_one_line_naming_it(shifts, expected):
    found = problems_of(with_shifts(DEMO, shifts))
    assert len(found) >= 1 and found[0].startswith(expected), found


# -- matching ---------------------------------------------------------------------------------------------------

def classes(*pairs: str) -> list[dict[str, str]]:
    """``"id:name"`` -> {"id": ..., "name": ...}."""
    return [dict(zip(("id", "name"), pair.split(":"))) for pair in pairs]


SOURCE = classes("red_circle:red circle", "mountain_bike:mountain bike", "tandem:tandem bicycle",
                 "n01443537:goldfish")


def write_map(path: Path, *lines: str) -> Path:
    path.write_text("# shift class<TAB>source class\n\n" + "".join(line + "\n" for line in lines))
    return path


def test_without_a_map_a_class_matches_the_source_class_of_its_id_else_of_its_name():
    shift = classes("red_circle:a red ring", "goldfish_folder:goldfish", "n01443537:whatever", "bike:bike")
    matching = match_classes(shift, SOURCE)
    assert matching.matches == [[0], [3], [3], []] and matching.matched == [0, 1, 2] and matching.unused_lines == []


def test_a_map_pairs_ids_or_names_and_a_class_on_several_lines_accepts_each(tmp_path):
    shift = classes("bicycle:bicycle", "circle:ring", "fish:fish", "sock:sock")
    path = write_map(tmp_path / "map.tsv", "bicycle\tmountain_bike", "bicycle\ttandem bicycle", "ring\tred circle",
                     "fish\tgoldfish", "fish\tn01443537")  # the same pair twice (by name, by id) counts once
    matching = match_classes(shift, SOURCE, path)
    assert matching.matches == [[1, 2], [0], [3], []]


def test_a_map_line_naming_an_imagenet_class_the_source_subset_lacks_is_unused_not_an_error(tmp_path):
    path = write_map(tmp_path / "map.tsv", "fish\tn01443537", "fish\tn01440764", "bike\ttench")  # tench: n01440764
    matching = match_classes(classes("fish:fish", "bike:bike"), SOURCE, path)
    assert matching.matches == [[3], []] and matching.unused_lines == [4, 5]


def test_a_wnid_in_a_map_names_a_class_that_goes_by_its_imagenet_name(tmp_path):
    """CLIP_benchmark's webdatasets name their classes (ids are names): a map in wnids still reads them."""
    path = write_map(tmp_path / "map.tsv", "n01443537\tn01443537")
    assert match_classes(classes("goldfish:goldfish", "tench:tench"), SOURCE, path).matches == [[3], []]


@pytest.mark.parametrize("lines, problem", [
    (["bicycle\tmountain_bike", "bicycle\tvelocipede"], "line 4: 'velocipede' is no class id or name of the source "
                                                      "dataset (it has e.g. 'red_circle', 'mountain_bike', 'tandem'; "
                                                      "columns: shift class<TAB>source class); correct the name or "
                                                      "remove the line"),
    (["tricycle\tmountain_bike"], "line 3: 'tricycle' is no class id or name of the shift set"),
    (["bicycle mountain_bike"], "line 3: 'bicycle mountain_bike' is not 'shift class<TAB>source class'"),
    (["bicycle\tmountain_bike\ttandem"], "line 3: 'bicycle\\tmountain_bike\\ttandem' is not 'shift class<TAB>source "
                                          "class'"),
])
def test_a_bad_map_line_is_one_line_naming_the_file_and_the_line(tmp_path, lines, problem):
    path = write_map(tmp_path / "map.tsv", *lines)
    with pytest.raises(BadFileError) as error:
        match_classes(classes("bicycle:bicycle", "sock:sock"), SOURCE, path)
    assert str(error.value).startswith(f"{path}: {problem}") and "\n" not in str(error.value)


def test_a_map_of_no_pair_is_refused(tmp_path):
    with pytest.raises(BadFileError, match="holds no pair"):
        match_classes(classes("a:a", "b:b"), SOURCE, write_map(tmp_path / "map.tsv"))


def test_scores_are_read_on_the_covered_source_classes_and_any_matched_class_is_right():
    matches = [[1, 2], [0]]  # shift class 0 (bicycle) -> mountain bike or tandem; 1 -> red circle
    scores = np.array([[0.1, 0.2, 0.3, 0.9],    # goldfish (3) is highest but no shift class covers it: tandem (2)
                       [0.5, 0.4, 0.1, 0.0],
                       [0.1, 0.6, 0.2, 0.0]])
    accepts = shift.acceptance(matches, 4)
    assert accepts.any(axis=0).tolist() == [True, True, True, False]  # the covered source classes
    predicted = shift.restricted_predictions(scores, accepts.any(axis=0))
    assert predicted.tolist() == [2, 0, 1]
    assert shift.shift_correct(predicted, np.array([0, 0, 1]), accepts).tolist() == [True, False, False]


# -- the ImageNet maps shipped in clip_study/assets -------------------------------------------------------------

ASSETS = ROOT / "clip_study" / "assets"
IMAGENET = [{"id": row[1], "name": row[2]} for row in
            (line.split("\t") for line in (ASSETS / "imagenet_classes.tsv").read_text().splitlines()[1:])]


@pytest.mark.parametrize("name, shift_classes, pairs", [("imagenet_r_classes.tsv", 200, 200),
                                                        ("imagenet_a_classes.tsv", 200, 200),
                                                        ("imagenetv2_classes.tsv", 1000, 1000),
                                                        ("objectnet_imagenet.tsv", 113, 125)])
def test_a_shipped_imagenet_map_pairs_every_line_with_an_imagenet_class(name, shift_classes, pairs):
    lines = class_map.map_lines(ASSETS / name)
    shift = [{"id": c, "name": c} for c in dict.fromkeys(left for _, left, _ in lines)]
    assert (len(shift), len(lines)) == (shift_classes, pairs)
    assert {right for _, _, right in lines} <= {entry["id"] for entry in IMAGENET}
    matching = match_classes(shift, IMAGENET, ASSETS / name)
    assert matching.unused_lines == [] and all(matching.matches) and sum(map(len, matching.matches)) == pairs
    # a study of some of ImageNet's classes reads the lines of its classes, and leaves the others unused
    some = match_classes(shift, IMAGENET[:300], ASSETS / name)
    assert len(some.unused_lines) + sum(map(len, some.matches)) == pairs and all(
        label < 300 for labels in some.matches for label in labels)


@pytest.mark.parametrize("name", ["imagenet_r_classes.tsv", "imagenet_a_classes.tsv"])
def test_imagenet_r_and_a_are_named_by_clips_imagenet_names_so_wnid_folders_match_alike(name):
    """The original tars' folders are wnids, CLIP_benchmark's copies name the classes: both match the same way."""
    lines = class_map.map_lines(ASSETS / name)
    names = {entry["id"]: entry["name"] for entry in IMAGENET}
    assert all(names[wnid] == left for _, left, wnid in lines)
    folders = [{"id": wnid, "name": names[wnid]} for _, _, wnid in lines]
    assert match_classes(folders, IMAGENET, ASSETS / name).matches == match_classes(folders, IMAGENET).matches


def test_objectnets_folder_names_give_the_names_its_map_pairs():
    rows = [line.split("\t") for line in (ASSETS / "objectnet_class_names.tsv").read_text().splitlines()]
    assert len(rows) == 313 and all(len(row) == 2 for row in rows) and len({name for _, name in rows}) == 313
    assert {left for _, left, _ in class_map.map_lines(ASSETS / "objectnet_imagenet.tsv")} <= {name for _, name in rows}


# -- fetch_shift ----------------------------------------------------------------------------------------------

def image_folder(root: Path, per_class: dict[str, int]) -> Path:
    """Class folders of generated shape PNGs."""
    rng = np.random.default_rng(0)
    for folder, count in per_class.items():
        (root / folder).mkdir(parents=True)
        for index in range(count):
            shapes.render("red", "circle", rng, 16).save(root / folder / f"{index:02d}.png")
    return root


@pytest.fixture
def shift_project(tmp_path):
    """A dataset's subset classes (written as fetch writes them), a shift folder of 4 classes, a params file."""
    source = tmp_path / "data" / "datasets" / "shapes" / "subset"
    source.mkdir(parents=True)
    (source / "classes.json").write_text(json.dumps(SOURCE))
    folder = image_folder(tmp_path / "shift", {"bicycle": 3, "mystery": 2, "red_circle": 3, "red_square": 1})
    (folder / "notes.txt").write_text("not an image")
    entry = {"of": "shapes", "source": str(folder), "split": "train", "max_per_class": 2, "seed": 0,
             "class_names": None, "class_map": None, "on_bad_image": "skip"}
    params = {"datasets": one_dataset(str(folder)), "shifts": {"mine": entry}}
    return tmp_path, params


def run_fetch_shift(tmp_path: Path, params: dict, **entry) -> Path:
    from stages import fetch_shift

    params = copy.deepcopy(params)
    params["shifts"]["mine"].update(entry)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "data" / "datasets" / "mine" / "subset"
    fetch_shift.main(["--params", str(tmp_path / "params.yaml"), "--shift", "mine",
                      "--source-classes", str(tmp_path / "data" / "datasets" / "shapes" / "subset" / "classes.json"),
                      "--out", str(out), "--metrics", str(tmp_path / "fetch.json")])
    return out


def test_fetch_shift_writes_a_test_only_subset_of_the_matched_classes_and_their_matches(shift_project, capsys):
    tmp_path, params = shift_project
    map_file = write_map(tmp_path / "map.tsv", "bicycle\tmountain_bike", "bicycle\ttandem", "red_circle\tred circle")
    out = run_fetch_shift(tmp_path, params, class_map=str(map_file))
    assert sorted(path.name for path in out.iterdir()) == ["class_map.json", "classes.json", "images", "test.csv"]
    assert split_names(out) == ("test",)
    assert read_classes(out) == [{"id": "bicycle", "name": "bicycle"}, {"id": "red_circle", "name": "red circle"}]
    assert json.loads((out / "class_map.json").read_text()) == {"of": "shapes", "source_classes": 4,
                                                                "matches": [[1, 2], [0]]}
    assert read_class_map(out) == ("shapes", 4, [[1, 2], [0]])
    rows = (out / "test.csv").read_text().splitlines()
    assert rows[0] == "file,label" and [row.split(",")[1] for row in rows[1:]] == ["0", "0", "1", "1"]  # 2 a class
    metrics = json.loads((tmp_path / "fetch.json").read_text())
    assert {key: metrics[key] for key in ("images_found", "images_checked", "test_images", "classes_found",
                                          "classes_matched", "classes_unmatched", "unmatched_classes", "classes_kept",
                                          "source_classes", "source_classes_covered", "ignored_files")} == {
        "images_found": 9, "images_checked": 6, "test_images": 4, "classes_found": 4, "classes_matched": 2,
        "classes_unmatched": 2, "unmatched_classes": ["mystery", "red_square"], "classes_kept": 2,
        "source_classes": 4, "source_classes_covered": 3, "ignored_files": 1}
    err = capsys.readouterr().err
    assert "warning: class 'mystery' (mystery) matches no class of shapes: left out" in err


def test_fetch_shift_without_a_map_matches_by_id_else_by_name_after_class_names(shift_project):
    tmp_path, params = shift_project
    names = tmp_path / "names.tsv"
    names.write_text("bicycle\tmountain bike\nred_square\tsquare\n")
    out = run_fetch_shift(tmp_path, params, class_names=str(names), max_per_class=None)
    assert read_classes(out) == [{"id": "bicycle", "name": "mountain bike"}, {"id": "red_circle", "name": "red circle"}]
    assert read_class_map(out) == ("shapes", 4, [[1], [0]])
    metrics = json.loads((tmp_path / "fetch.json").read_text())
    assert (metrics["test_images"], metrics["unmatched_classes"]) == (6, ["mystery", "red_square"])


def test_zero_or_one_matched_class_is_a_one_line_error(shift_project):
    tmp_path, params = shift_project
    with pytest.raises(UserError) as error:
        run_fetch_shift(tmp_path, params)  # by id: red_circle alone
    assert str(error.value).startswith("shifts.mine: 1 of its 4 classes match a class of shapes") and \
        "\n" not in str(error.value)
    map_file = write_map(tmp_path / "map.tsv", "mystery\tn01440764")  # tench: an ImageNet class shapes lacks
    with pytest.raises(UserError, match=r"^shifts.mine: 0 of its 4 classes match"):
        run_fetch_shift(tmp_path, params, class_map=str(map_file))


def test_a_bad_map_line_stops_fetch_shift_naming_the_param(shift_project):
    tmp_path, params = shift_project
    map_file = write_map(tmp_path / "map.tsv", "bicycle\tbike")
    with pytest.raises(UserError, match=rf"^shifts.mine.class_map: {map_file}: line 3: 'bike' is no class id"):
        run_fetch_shift(tmp_path, params, class_map=str(map_file))


def test_of_naming_no_dataset_stops_fetch_shift_before_any_work(shift_project):
    tmp_path, params = shift_project
    with pytest.raises(UserError, match=r"shifts.mine.of: 'imagenet' is not an entry of datasets \(shapes\)"):
        run_fetch_shift(tmp_path, params, of="imagenet")


@pytest.mark.parametrize("damage, problem", [
    (lambda m: m | {"matches": [[1, 2]]}, "'matches' is not a list of one entry per class of classes.json (2)"),
    (lambda m: m | {"matches": [[1, 2], []]}, "'matches' entry 1 is [], not a non-empty list of distinct source "
                                              "labels 0..3"),
    (lambda m: m | {"matches": [[1, 4], [0]]}, "'matches' entry 0 is [1, 4], not a non-empty list of distinct "
                                               "source labels 0..3"),
    (lambda m: m | {"source_classes": "4"}, "'source_classes' is '4', not a number of classes >= 2"),
])
def test_a_damaged_class_map_json_names_the_file_and_the_fix(shift_project, damage, problem):
    tmp_path, params = shift_project
    map_file = write_map(tmp_path / "map.tsv", "bicycle\tmountain_bike", "bicycle\ttandem", "red_circle\tred circle")
    out = run_fetch_shift(tmp_path, params, class_map=str(map_file))
    path = out / "class_map.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    with pytest.raises(BadFileError) as error:
        read_class_map(out, fix="rebuild it")
    assert str(error.value) == f"{path}: {problem}; rebuild it"


# -- extract on a shift subset ----------------------------------------------------------------------------------

def test_extract_encodes_the_test_split_of_a_shift_subset_alone(shift_project, tiny_clip_dir):
    import torch

    from clip_study.data.features import load_features
    from clip_study.data.subset import read_split
    from stages import extract
    from tests.dvc_repo import write_extract_params

    tmp_path, params = shift_project
    map_file = write_map(tmp_path / "map.tsv", "bicycle\tmountain_bike", "red_circle\tred circle")
    subset = run_fetch_shift(tmp_path, params, class_map=str(map_file))
    write_extract_params(tmp_path / "extract.yaml", tiny_clip_dir, batch_size=4, workers=0, threads=1)
    threads = torch.get_num_threads()
    try:
        extract.main(["--params", str(tmp_path / "extract.yaml"), "--subset", str(subset), "--out",
                      str(tmp_path / "features"), "--metrics", str(tmp_path / "extract.json")])
    finally:
        torch.set_num_threads(threads)
    assert sorted(path.name for path in (tmp_path / "features").iterdir()) == ["test.npz"]
    features, labels = load_features(tmp_path / "features" / "test.npz", num_classes=2)
    assert labels.tolist() == read_split(subset, "test")[1].tolist() and features.shape[0] == 4
    assert json.loads((tmp_path / "extract.json").read_text())["images"] == 4


# -- the demo's shift sets ----------------------------------------------------------------------------------------

def bright(image) -> np.ndarray:
    """Pixels of a shape's colour: every demo colour has a channel >= 190, the dark background stays below ~80."""
    return np.asarray(image).max(axis=2) > 120


def test_the_shift_sets_are_written_deterministically_in_the_evaluation_sets_folder_names(tmp_path):
    counts = shapes.write_shift_sets(tmp_path / "a", per_class=2, seed=0, size=16)
    shapes.write_shift_sets(tmp_path / "b", per_class=2, seed=0, size=16)
    assert counts == {"outline": 98, "noisy": 98, "small": 42}
    files = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 238 and files == sorted(path.relative_to(tmp_path / "b")
                                                 for path in (tmp_path / "b").rglob("*.png"))
    assert all((tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes() for file in files)
    every = {shapes.folder_name(*pair) for pair in shapes.all_classes()}
    for shift in shapes.SHIFT_SETS:
        assert {path.name for path in (tmp_path / "a" / shift).iterdir()} <= every
    small = sorted(path.name for path in (tmp_path / "a" / "small").iterdir())
    assert len(small) == 21 and {name.split("_")[0] for name in small} == set(shapes.SMALL_COLOURS)
    other = shapes.write_shift_sets(tmp_path / "c", per_class=1, seed=1, size=16)
    assert other["outline"] == 49 and (tmp_path / "c" / "outline" / "red_circle" / "0000.png").read_bytes() != \
        (tmp_path / "a" / "outline" / "red_circle" / "0000.png").read_bytes()


def test_the_demos_small_class_map_pairs_each_small_class_with_the_shapes_class_of_its_id():
    lines = class_map.map_lines(ROOT / "demo" / "small_classes.tsv")
    expected = [shapes.folder_name(*pair) for pair in shapes.shift_classes("small")]
    assert [(left, right) for _, left, right in lines] == [(name, name) for name in expected]
    assert DEMO["shifts"]["small"]["class_map"] == "small_classes.tsv"


@pytest.mark.parametrize("shape", ["circle", "square", "hexagon"])
def test_an_outline_is_the_filled_shapes_border_with_background_inside(shape):
    """Drawn from the same draws, the outline covers fewer pixels than the filled shape, and the filled shape's
    centre is background in the outline."""
    for seed in range(10):
        filled = bright(shapes.render("red", shape, np.random.default_rng(seed), 32))
        outline = bright(shapes.render("red", shape, np.random.default_rng(seed), 32, shift="outline"))
        rows, cols = np.nonzero(filled)
        centre = int(round(rows.mean())), int(round(cols.mean()))
        assert 0 < outline.sum() < filled.sum() and filled[centre] and not outline[centre], (shape, seed)


def corner_spread(image) -> float:
    """How much the four corner pixels of an image differ (per channel, averaged): a circle never reaches them."""
    corners = np.asarray(image).astype(float)[[0, 0, -1, -1], [0, -1, 0, -1]]
    return float(corners.std(axis=0).mean())


def test_a_noisy_background_varies_across_the_image_far_more_than_the_plain_dark_one():
    rng = np.random.default_rng(0)
    plain = np.median([corner_spread(shapes.render("white", "circle", rng, 32)) for _ in range(20)])
    noisy = np.median([corner_spread(shapes.render("white", "circle", rng, 32, shift="noisy")) for _ in range(20)])
    assert plain < 10 and noisy > 4 * plain


def centroids(masks: list[np.ndarray]) -> np.ndarray:
    return np.array([np.argwhere(mask).mean(axis=0) for mask in masks])


def test_a_small_shape_covers_far_fewer_pixels_and_goes_nearer_the_edges():
    rng = np.random.default_rng(0)
    plain = [bright(shapes.render("red", "square", rng, 32)) for _ in range(100)]
    small = [bright(shapes.render("red", "square", rng, 32, shift="small")) for _ in range(100)]
    assert np.mean([mask.sum() for mask in small]) < 0.35 * np.mean([mask.sum() for mask in plain])
    assert centroids(small).min() < centroids(plain).min() and centroids(small).max() > centroids(plain).max()


def test_an_unknown_shift_is_refused():
    with pytest.raises(ValueError, match="shift must be one of"):
        shapes.shift_classes("blurry")


@pytest.mark.parametrize("running, stage, target", [
    ("demo/dvc.yaml:fetch_shift@small", "fetch_shift", "demo/dvc.yaml:fetch_shift@small"),
    ("extract_shift@clip-outline", "fetch_shift", "fetch_shift@outline"),
    ("shift@clip_b32-imagenet_r", "extract_shift", "extract_shift@clip_b32-imagenet_r"),
    ("shift@clip-outline", "probe@clip-shapes", "probe@clip-shapes"),  # the source dataset's stage, named in full
    ("extract@clip-shapes", "fetch", "fetch@shapes"),
])
def test_a_shift_stages_fix_names_the_stage_to_rerun(monkeypatch, running, stage, target):
    from clip_study.pipeline.stage import rebuild

    monkeypatch.setenv("DVC_STAGE", running)
    assert rebuild(stage) == f"rebuild it with `dvc repro --force --single-item {target}`"


def test_average_is_no_shift_sets_name_as_results_csv_names_the_mean():
    from clip_study.pipeline.sections import shifts as section

    assert section.AVERAGE == shift.AVERAGE
    params = yaml.safe_load((ROOT / "demo" / "params.yaml").read_text())
    params["shifts"] = {"average": params["shifts"]["outline"]}
    assert section.shifts_across(params) == [f"shifts.average: results.csv names the mean over a dataset's shift "
                                             "sets 'average'; rename the shift set"]
