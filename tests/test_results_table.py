"""metrics/results.csv: every score of every (model, dataset) pair, on a metrics folder of 2 models x 2 datasets
made of the demo's committed files, and a constructed shift set's rows; each value checked against the JSON it
comes from, read here without the records, and the file read back by ``clip_study.load_results``."""

import json
import math
import shutil

import pandas as pd
import pytest

import clip_study
from clip_study.metrics_files.shift import DropComparison, Estimate, ShiftRow
from clip_study.reporting.pairs import read_pair
from clip_study.reporting.results_table import COLUMNS, load_results, results_table, write_results
from tools.imports import ROOT

DEMO_MODELS = ROOT / "demo" / "metrics" / "models"
MODELS, DATASETS = ("clip", "siglip"), ("shapes", "tiles")


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    """A metrics folder whose every pair holds the demo model's files, and its results.csv."""
    folder = tmp_path_factory.mktemp("metrics")
    for model in MODELS:
        for dataset in DATASETS:
            shutil.copytree(DEMO_MODELS / model / "shapes", folder / "models" / model / dataset,
                            ignore=shutil.ignore_patterns("figures", "*.md"))
    table = results_table({(model, dataset): read_pair(folder / "models" / model / dataset)
                           for model in MODELS for dataset in DATASETS})
    write_results(table, folder / "results.csv")
    return folder, table


def expected_rows(folder, model, dataset):
    """(model, dataset, task, classifier, prompt, fewshot_k, alpha, metric) -> (value, low, high) of one pair,
    from its JSON files as written."""
    def read(name):
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def scores(d):
        return {"acc1": (d["top1"], d["top1_low"], d["top1_high"]), "acc5": (d["top5"], None, None),
                "mean_per_class_recall": (d["mean_per_class_recall"], None, None),
                "macro_f1": (d["macro_f1"], d["macro_f1_low"], d["macro_f1_high"])}

    def calibration(d):
        return {f"{name}{suffix}": (d[when][name], None, None)
                for suffix, when in (("", "before"), ("_scaled", "after")) for name in ("ece", "nll", "brier")}

    def k(point):
        return -1 if point["label"] == "all" else point["k"]

    rows = {}

    def add(task, classifier, values, prompt=None, fewshot_k=None, alpha=None):
        for metric, value in values.items():
            rows[model, dataset, task, classifier, prompt, fewshot_k, alpha, metric] = value

    zeroshot, similarity = read("zeroshot"), read("similarity")
    best = {**zeroshot["templates"], **zeroshot.get("ensembles", {})}[zeroshot["best"]]
    add("zeroshot_classification", "zeroshot", scores(best) | calibration(zeroshot["calibration"]),
        prompt=zeroshot["best"])
    for kind, results in (("template", zeroshot["templates"]), ("ensemble", zeroshot.get("ensembles", {}))):
        for key, result in results.items():
            add("zeroshot_classification", kind, scores(result), prompt=key)
    add("zeroshot_classification", "dot_product", scores(similarity["dot"]), prompt=similarity["template"])
    for name in ("probe", "logreg"):
        data = read(name)
        add("linear_probe", name, scores(data) | calibration(data["calibration"]))
    for point in read("fewshot")["curve"]:
        add("fewshot_linear_probe", "logreg", {"acc1": (point["mean_top1"], point["top1_low"], point["top1_high"])},
            fewshot_k=k(point))
    for point in read("zsinit")["curve"]:
        for classifier, runs in (("zsinit", point["init"]), ("zsinit_mix", point["mix"])):
            add("fewshot_zeroshot_init", classifier, {"acc1": (runs["mean_top1"], runs["top1_low"], runs["top1_high"])},
                fewshot_k=k(point), alpha=runs.get("mean_alpha"))
    return rows


def missing_as_none(value):
    return None if value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value


def test_every_value_is_its_metrics_files_and_every_score_is_there(metrics):
    folder, _ = metrics
    written = pd.read_csv(folder / "results.csv", dtype=str, keep_default_na=False)  # the text, unparsed
    found = {}
    for row in written.to_dict("records"):
        assert row["shift"] == ""  # no shift set here
        key = (row["model"], row["dataset"], row["task"], row["classifier"], row["prompt"] or None,
               int(row["fewshot_k"]) if row["fewshot_k"] else None, float(row["alpha"]) if row["alpha"] else None,
               row["metric"])
        assert key not in found, key
        found[key] = tuple(float(row[name]) if row[name] else None for name in ("value", "low", "high"))
        checkpoint = json.loads((folder / "models" / row["model"] / row["dataset"] / "extract.json").read_text())
        assert row["pretrained"] == checkpoint["checkpoint"]
    expected = {key: value for model in MODELS for dataset in DATASETS
                for key, value in expected_rows(folder / "models" / model / dataset, model, dataset).items()}
    assert found == expected  # equal floats: the CSV's text reads back as the JSON's number


def test_the_rows_come_in_the_params_order_models_then_datasets(metrics):
    _, table = metrics
    pairs = list(dict.fromkeys(zip(table["model"], table["dataset"])))
    assert pairs == [(model, dataset) for model in MODELS for dataset in DATASETS]
    assert list(dict.fromkeys(table["task"])) == ["zeroshot_classification", "linear_probe", "fewshot_linear_probe",
                                                  "fewshot_zeroshot_init"]


def test_load_results_reads_back_the_table_as_written_with_its_dtypes(metrics):
    folder, table = metrics
    loaded = clip_study.load_results(folder)
    assert clip_study.load_results is load_results
    pd.testing.assert_frame_equal(loaded, table)
    assert {name: str(dtype) for name, dtype in loaded.dtypes.items()} == COLUMNS
    zeroshot = loaded[(loaded["classifier"] == "zeroshot") & (loaded["metric"] == "acc1")]
    assert zeroshot["fewshot_k"].isna().all() and zeroshot["low"].notna().all()
    assert loaded.loc[loaded["task"] == "fewshot_linear_probe", "fewshot_k"].tolist()[:6] == [1, 2, 4, 8, 16, -1]


def test_the_columns_and_names_are_clip_benchmarks_where_it_has_them(metrics):
    _, table = metrics
    assert {"model", "pretrained", "dataset", "task"} <= set(table.columns)  # CLIP_benchmark's result keys
    assert {"acc1", "acc5", "mean_per_class_recall"} <= set(table["metric"])  # its metrics
    assert {"zeroshot_classification", "linear_probe"} <= set(table["task"])  # its task names


def test_a_folder_without_the_table_says_how_to_make_it(tmp_path):
    with pytest.raises(clip_study.UserError, match=r"results.csv.*dvc repro leaderboard"):
        load_results(tmp_path)


def estimate(value):
    return Estimate(value=value, low=round(value - 0.02, 6), high=round(value + 0.03, 6))


def shift_row(name, classifier, top1, chosen=False, k=None, alpha=None):
    """A shift.json row whose source top-1 is 0.9, its shift top-1 ``top1``."""
    return ShiftRow(name=name, classifier=classifier, chosen=chosen, k=k, alpha=alpha, runs=1, source=estimate(0.9),
                    shift=estimate(top1), drop=estimate(round(0.9 - top1, 6)),
                    effective_robustness=estimate(round(top1 - 0.5, 6)),
                    drop_vs_zero_shot=DropComparison(value=0.01, low=-0.02, high=0.04, p_value=0.5))


SHIFT_ROWS = [shift_row("zeroshot/a_picture_of_a", "zeroshot", 0.61, chosen=True),
              shift_row("zeroshot/clip_80", "zeroshot", 0.62), shift_row("probe", "probe", 0.63),
              shift_row("fewshot/k=all", "fewshot", 0.64, k="all"), shift_row("fewshot/k=4", "fewshot", 0.4, k="4"),
              shift_row("zsinit_mix/k=all", "zsinit_mix", 0.65, k="all"),
              shift_row("wiseft_logreg/alpha=0.3", "wiseft_logreg", 0.66, chosen=True, alpha=0.3)]


def test_shift_rows_follow_their_pairs_rows_with_every_metric_of_each_classifier(metrics, tmp_path):
    """A shift set of shapes for clip alone: per shift set and the average, every shift.json row as four metrics,
    the prompt, k and alpha columns as the other tasks fill them."""
    folder, plain = metrics
    pairs = {(model, dataset): read_pair(folder / "models" / model / dataset) for model in MODELS
             for dataset in DATASETS}
    average = [shift_row(row.name, row.classifier, round(row.shift.value - 0.05, 6), row.chosen, row.k, row.alpha)
               for row in SHIFT_ROWS]
    table = results_table(pairs, {("clip", "shapes"): {"sketch": SHIFT_ROWS, "average": average}})
    write_results(table, tmp_path / "results.csv")
    loaded = load_results(tmp_path)
    shift = loaded[loaded["task"] == "distribution_shift"]
    pd.testing.assert_frame_equal(loaded[loaded["task"] != "distribution_shift"].reset_index(drop=True), plain)
    clip_shapes = loaded.index[(loaded["model"] == "clip") & (loaded["dataset"] == "shapes")]
    assert list(shift.index) == list(clip_shapes[-len(shift):])  # after the pair's own rows, before the next pair's
    assert list(dict.fromkeys(shift["shift"])) == ["sketch", "average"]
    zsinit = json.loads((folder / "models" / "clip" / "shapes" / "zsinit.json").read_text())
    mix_alpha = next(point["mix"]["mean_alpha"] for point in zsinit["curve"] if point["label"] == "all")
    written = pd.read_csv(tmp_path / "results.csv", dtype=str, keep_default_na=False)
    written = written[written["task"] == "distribution_shift"]
    found = [(r["shift"], r["classifier"], r["prompt"], r["fewshot_k"], r["alpha"], r["metric"],
              float(r["value"]), float(r["low"]), float(r["high"])) for r in written.to_dict("records")]
    expected = []
    for name, rows in (("sketch", SHIFT_ROWS), ("average", average)):
        columns = [("zeroshot", "a_picture_of_a", "", ""), ("template", "a_picture_of_a", "", ""),
                   ("ensemble", "clip_80", "", ""), ("probe", "", "", ""), ("fewshot", "", "-1", ""),
                   ("fewshot", "", "4", ""), ("zsinit_mix", "", "-1", str(mix_alpha)),
                   ("wiseft_logreg", "", "", "0.3")]
        for row, column in zip([rows[0], *rows], columns):
            for metric, value in (("acc1", row.shift), ("acc1_source", row.source), ("drop", row.drop),
                                  ("effective_robustness", row.effective_robustness)):
                expected.append((name, *column, metric, value.value, value.low, value.high))
    assert found == expected
    assert set(written["pretrained"]) == {json.loads((folder / "models" / "clip" / "shapes" / "extract.json")
                                                     .read_text())["checkpoint"]}
