"""The metrics files' definitions (clip_study/metrics_files): every committed demo metrics file reads into its
records and writes back to the same bytes, the codec checks shapes with one-line errors, and each stage imports
the definitions of exactly the files it writes and reads (so that an edit to one reruns no other stage)."""

import dataclasses
import importlib
import json
import typing
from pathlib import Path

import pytest

from clip_study.errors import BadFileError
from clip_study.files import read_json, write_json
from clip_study.metrics_files.record import MetricsFile, Record, as_json, field_types, json_keys, without_none
from clip_study.metrics_files.scores import CLASSIFIERS, Calibration, PairedTest, Scores
from clip_study.metrics_files.summary import PairedMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from tools.imports import ROOT, files_run_by

DEMO_METRICS = ROOT / "demo" / "metrics"
DEMO_DATASETS = ("shapes", "shape_only")
DEMO_MODELS = ("clip", "siglip")
DEMO_SHIFTS = ("outline", "noisy", "small")
DEMO_CAPTIONS = ("shape_captions",)
DEFINITIONS = sorted(path.stem for path in (ROOT / "clip_study" / "metrics_files").glob("*.py")
                     if path.stem not in ("__init__", "record", "scores"))  # one module per stage
FILES: list[MetricsFile] = [file for name in DEFINITIONS
                            for file in importlib.import_module(f"clip_study.metrics_files.{name}").FILES]


def demo_paths(file: MetricsFile) -> list[Path]:
    """The demo's committed copies of ``file`` (one per model, dataset or pair for such a file)."""
    relative = [file.path.removeprefix("metrics/")]
    for name, values in (("<model>", DEMO_MODELS), ("<dataset>", DEMO_DATASETS), ("<shift>", DEMO_SHIFTS),
                         ("<captions>", DEMO_CAPTIONS)):
        relative = [path.replace(name, value) for path in relative for value in values] if any(name in path for path in relative) \
            else relative
    return [DEMO_METRICS / path for path in relative]


COMMITTED = [(file, path) for file in FILES for path in demo_paths(file)]


@pytest.mark.parametrize("file, path", COMMITTED, ids=[str(path.relative_to(DEMO_METRICS)) for _, path in COMMITTED])
def test_a_committed_metrics_file_reads_into_its_records_and_writes_back_byte_identical(file, path, tmp_path):
    records = file.read(path)
    again = tmp_path / path.name
    write_json(again, as_json(records))  # the stages' writer
    assert again.read_bytes() == path.read_bytes()


def test_every_committed_metrics_file_has_a_definition():
    committed = {path.relative_to(DEMO_METRICS).as_posix() for path in DEMO_METRICS.rglob("*.json")}
    assert committed == {path.relative_to(DEMO_METRICS).as_posix() for _, path in COMMITTED}


def test_each_stage_module_defines_the_files_of_its_stage():
    for name in DEFINITIONS:
        module = importlib.import_module(f"clip_study.metrics_files.{name}")
        assert {file.stage for file in module.FILES} == {name}, name
    assert len({file.path for file in FILES}) == len(FILES)


def every_record(record: type[Record], seen: set | None = None) -> set[type[Record]]:
    """``record`` and every record nested in it."""
    seen = set() if seen is None else seen
    seen.add(record)
    for kind in field_types(record).values():
        for inner in nested_types(kind):
            if isinstance(inner, type) and issubclass(inner, Record) and inner not in seen:
                every_record(inner, seen)
    return seen


def nested_types(kind) -> list:
    """The types a field's type is made of: ``dict[str, X | None]`` -> [str, X]."""
    kind, _ = without_none(kind)
    args = typing.get_args(kind)
    return [kind] if not args else [inner for arg in args for inner in nested_types(arg)]


def test_every_field_says_what_it_means_and_every_record_is_frozen_and_keyword_only():
    for record in {inner for file in FILES for inner in every_record(file.record)}:
        assert record.__dataclass_params__.frozen and record.__doc__, record
        for field in dataclasses.fields(record):
            assert field.kw_only and field.metadata.get("meaning"), f"{record.__name__}.{field.name}"
            assert "\n" not in field.metadata["meaning"]


def test_the_classifier_keys_are_the_fields_that_hold_them():
    from clip_study.metrics_files.leaderboard import ModelComparison
    from clip_study.metrics_files.report import PerClassRow

    assert tuple(field.name for field in dataclasses.fields(ModelComparison)) == CLASSIFIERS
    assert json_keys(PerClassRow) == {"class", *CLASSIFIERS}


# the codec, on small records

SCORES = {"top1": 0.5, "top5": 1.0, "macro_f1": 0.4, "mean_per_class_recall": 0.5, "top1_low": 0.3,
          "top1_high": 0.7, "macro_f1_low": 0.2, "macro_f1_high": 0.6}
TEST = {"a_only": 3, "b_only": 1, "p_value": 0.625, "verdict": "not distinguishable at 8 test images (p = 0.62)"}


def test_records_are_built_by_keyword_only():
    with pytest.raises(TypeError):
        PairedTest(3, 1, 0.625, "verdict")  # noqa: the point of the test
    assert PairedTest(**TEST).to_json() == TEST


def test_the_definition_orders_the_keys_and_inline_records_write_theirs_in_place():
    shuffled = dict(reversed(list(SCORES.items())))
    assert list(Scores.from_json(shuffled).to_json()) == list(SCORES)  # the definition's order, not the input's
    from clip_study.metrics_files.probe import FinalEpoch

    final = FinalEpoch.from_json({**SCORES, "epoch": 3})
    assert final.test.top1 == 0.5 and list(final.to_json()) == ["epoch", *SCORES]


def test_values_are_kept_as_written():
    """No number is converted: a whole-number float stays a float, an int an int, so the bytes round-trip."""
    scores = Scores.from_json({**SCORES, "top1": 1, "top5": 1.0})
    assert json.dumps(scores.to_json()).startswith('{"top1": 1, "top5": 1.0,')


def test_an_optional_field_is_left_out_when_none_and_a_nullable_one_written_as_null():
    paired = PairedMetrics(num_test_images=8, probe_vs_zeroshot=PairedTest(**TEST), logreg_vs_zeroshot=None,
                           dot_vs_cosine=PairedTest(**TEST))
    assert list(paired.to_json()) == ["num_test_images", "probe_vs_zeroshot", "dot_vs_cosine"]
    assert PairedMetrics.from_json(paired.to_json()) == paired
    from clip_study.metrics_files.zeroshot import ZeroshotScores

    chosen = ZeroshotScores.from_json({"choice_top1": 0.5, **SCORES, "vs_chosen": None})
    assert chosen.vs_chosen is None and chosen.to_json()["vs_chosen"] is None


def test_a_file_missing_a_field_names_the_file_the_field_and_the_fix(tmp_path):
    zeroshot = json.loads((DEMO_METRICS / "models" / "clip" / "shapes" / "zeroshot.json").read_text())
    del zeroshot["calibration"]["after"]["nll"]
    path = tmp_path / "zeroshot.json"
    write_json(path, zeroshot)
    with pytest.raises(BadFileError, match=r"zeroshot.json: has no field 'nll'; rebuild it"):
        ZeroshotMetrics.from_json(read_json(path, fix="rebuild it"))


@pytest.mark.parametrize("change, problem", [
    (lambda d: d | {"extra": 1}, "has a field 'extra' that no ZeroshotMetrics has"),
    (lambda d: d | {"calibration": 0.5}, "field 'calibration' is 0.5, not an object {...}"),
    (lambda d: d | {"templates": []}, "field 'templates' is [], not an object {...}"),
    (lambda d: {**d, "calibration": {**d["calibration"], "reliability_after": {}}},
     "field 'reliability_after' is {}, not a list [...]"),
])
def test_a_file_of_another_shape_is_one_line_naming_it(tmp_path, change, problem):
    path = tmp_path / "zeroshot.json"
    write_json(path, change(json.loads((DEMO_METRICS / "models" / "clip" / "shapes" / "zeroshot.json").read_text())))
    with pytest.raises(BadFileError) as error:
        ZeroshotMetrics.from_json(read_json(path, fix="rebuild it"))
    assert str(error.value) == f"{path}: {problem}; rebuild it"


def test_a_dict_from_the_library_in_another_shape_is_a_type_error():
    calibration = json.loads((DEMO_METRICS / "models" / "clip" / "shapes" / "probe.json").read_text())["calibration"]
    with pytest.raises(TypeError, match="has a field 'ece_scaled' that no Calibration has"):
        Calibration.from_json({**calibration, "ece_scaled": 0.1})


def test_a_rows_file_holding_something_else_than_objects_is_one_line(tmp_path):
    from clip_study.metrics_files.probe import FILES as PROBE_FILES

    path = tmp_path / "probe_curve.json"
    write_json(path, [1, 2])
    with pytest.raises(BadFileError, match=r"probe_curve.json: holds a row 1, not an object \{...\}; rebuild"):
        PROBE_FILES[1].read(path, fix="rebuild")


# which stage loads which definitions

READS = {  # stage -> the stages whose metrics files it reads
    "similarity": {"zeroshot"}, "fewshot": {"logreg"}, "zsinit": {"zeroshot"}, "heldout": {"zeroshot"},
    "summary": {"zeroshot", "similarity", "probe", "logreg", "fewshot", "heldout", "zsinit"},
    "report": {"zeroshot", "similarity", "probe", "logreg", "fewshot", "heldout", "zsinit", "summary"},
    "leaderboard": {"extract", "zeroshot", "similarity", "probe", "logreg", "fewshot", "zsinit", "shift", "retrieval"},
}


def definitions_run_by(module: str) -> set[str]:
    return {file.stem for file in files_run_by(module) if file.parent.name == "metrics_files"} - {
        "__init__", "record", "scores"}


@pytest.mark.parametrize("stage", sorted(path.stem for path in (ROOT / "stages").glob("*.py")
                                         if path.stem != "__init__"))
def test_a_stage_loads_the_definitions_of_the_files_it_writes_and_reads_and_no_other(stage):
    writes = {stage} if stage in DEFINITIONS else set()
    assert definitions_run_by(f"stages.{stage}") == writes | READS.get(stage, set())


@pytest.mark.parametrize("name", DEFINITIONS + ["record", "scores"])
def test_a_definition_runs_no_library_code(name):
    """Importing a definition costs nothing heavy and couples nothing: only the codec, the shared parts, the file
    readers and the errors."""
    allowed = {"clip_study/__init__.py", "clip_study/errors.py", "clip_study/files.py"}
    run = {file.relative_to(ROOT).as_posix() for file in files_run_by(f"clip_study.metrics_files.{name}")}
    assert {file for file in run if not file.startswith("clip_study/metrics_files/")} <= allowed


@pytest.mark.parametrize("stage", ["scan", "fetch", "extract", "generate", "pretrain"])
def test_the_stages_before_scoring_run_no_reporting_code(stage):
    run = {file.relative_to(ROOT).as_posix() for file in files_run_by(f"stages.{stage}")}
    assert not {file for file in run if file.startswith("clip_study/reporting/")}


def test_docs_metrics_md_is_generated_from_the_definitions():
    from tools.metrics_doc import PATH, definition_modules, metrics_doc

    assert sorted(definition_modules()) == DEFINITIONS  # every definition module documented
    assert (ROOT / PATH).read_text() == metrics_doc(), f"{PATH} is stale: run python -m tools.sync"
    for file in FILES:
        assert f"## `{file.path}`" in metrics_doc()
