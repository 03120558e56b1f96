"""metrics/results.csv: every score of every (model, dataset) pair and (model, caption set) pair in one long table,
one row per model, dataset, shift set, task, classifier (with its prompt, few-shot k and mixing weight where they
apply) and metric, for pandas, a spreadsheet or a comparison with LAION's CLIP_benchmark, whose names it follows
where it has them.

Columns (``COLUMNS``): ``model`` (the short name), ``pretrained`` (the checkpoint: hub id or local directory),
``dataset`` (the short name; for a shift row, the dataset the classifiers were fitted on; for a retrieval row, the
caption set's), ``shift`` (empty but for ``distribution_shift`` rows: the shift set's short name, or ``average`` for
the mean over all the dataset's shift sets), ``task``, ``classifier``, ``prompt`` (a template's or ensemble's key in
zeroshot.json; for a retrieval row, the template around each caption, empty for the captions as given), ``fewshot_k``
(labelled train images per class; -1 for every train image, as CLIP_benchmark's ``--fewshot_k -1``), ``alpha``
(zsinit's mixing weight chosen on validation, mean over runs; a WiSE-FT row's mixing weight), ``metric``,
``value``, and ``low`` and ``high`` (its bootstrap interval; empty where there is none).

Tasks and classifiers (``TASKS``):

- ``zeroshot_classification``: ``zeroshot`` (the classifier chosen on the train images: the headline),
  ``template`` and ``ensemble`` (every one of zeroshot.json), ``dot_product`` (the chosen one scored by the raw
  dot product; by cosine it is ``zeroshot``);
- ``linear_probe``: ``probe`` (nn.Linear at the epoch chosen on validation), ``logreg`` (the CLIP paper's
  logistic regression, C chosen on validation);
- ``fewshot_linear_probe``: ``logreg`` on k images per class, mean over the seeded runs;
- ``fewshot_zeroshot_init``: ``zsinit`` (the head trained from zero-shot) and ``zsinit_mix`` (its mix with
  zero-shot), mean over the runs;
- ``distribution_shift``: every classifier shift.json reports, fitted on ``dataset`` and scored on ``shift``:
  ``zeroshot`` (the chosen one) and every ``template`` and ``ensemble``, ``probe``, ``logreg``, ``fewshot`` (the
  logistic probe on k images per class) and ``zsinit``/``zsinit_mix`` per k (the runs averaged image by image),
  and ``wiseft_logreg``/``wiseft_zsinit`` at each ``alpha`` (0: zero-shot, 1: the fitted head);
- ``zeroshot_retrieval`` (CLIP_benchmark's name): the direction, ``image_to_text`` (each image a query for its
  captions) or ``text_to_image`` (each caption a query for its image), on a caption set (``dataset``).

Metrics: ``acc1``, ``acc5``, ``mean_per_class_recall`` (CLIP_benchmark's), ``macro_f1``, and for the three
headline classifiers (zeroshot, probe, logreg) ``ece``, ``nll``, ``brier`` of their probabilities as predicted
and ``ece_scaled``, ``nll_scaled``, ``brier_scaled`` after temperature scaling; few-shot rows have ``acc1``, the
mean over the runs. A ``distribution_shift`` row has ``acc1`` (top-1 on the shift set, or the mean over the shift
sets), ``acc1_source`` (top-1 on the dataset's test images), ``drop`` (their difference) and
``effective_robustness`` (above the logit-axis fit of the probes), each with its paired bootstrap interval: from
``metrics/models/<model>/<shift>/shift.json`` per shift set, from the leaderboard's evaluation over all of them for
``average``. A ``zeroshot_retrieval`` row has ``<benchmark name>_recall@<k>`` per k of the retrieval params,
CLIP_benchmark's names (``text_retrieval_recall@<k>`` on an ``image_to_text`` row, ``image_retrieval_recall@<k>``
on a ``text_to_image`` one: the fraction of queries with a right result among the first k), then ``mean_rank``
(of the first right result, 1: first), each with its bootstrap interval over the images, and ``median_rank``: from
``metrics/models/<model>/<caption set>/retrieval.json``. A model's retrieval rows follow all its dataset rows, caption
sets in the params' order. Every value is the metrics file's, and the CSV writes it so that it reads back equal.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from clip_study.errors import BadFileError
from clip_study.files import read_text
from clip_study.metrics_files.retrieval import RetrievalMetrics
from clip_study.metrics_files.scores import Calibration, RunsTop1, Scores, Shots
from clip_study.evaluation.shift import AVERAGE
from clip_study.metrics_files.shift import Estimate, ShiftRow
from clip_study.reporting.pairs import PairMetrics

COLUMNS = {"model": "string", "pretrained": "string", "dataset": "string", "shift": "string", "task": "string",
           "classifier": "string", "prompt": "string", "fewshot_k": "Int64", "alpha": "float64",
           "metric": "string", "value": "float64", "low": "float64", "high": "float64"}
"""The columns in order, with their pandas dtypes (``load_results``)."""
TASKS = ("zeroshot_classification", "linear_probe", "fewshot_linear_probe", "fewshot_zeroshot_init",
         "distribution_shift", "zeroshot_retrieval")
EVERY_TRAIN_IMAGE = -1
"""fewshot_k of a curve's 'all' point, as CLIP_benchmark writes a probe on the whole train set."""
FILE = "results.csv"

Row = dict[str, Any]


def _metric(name: str, value: float, low: float | None = None, high: float | None = None) -> Row:
    return {"metric": name, "value": value, "low": low, "high": high}


def score_metrics(scores: Scores) -> list[Row]:
    """A classifier's test scores, top-1 and macro-F1 with their intervals."""
    return [_metric("acc1", scores.top1, scores.top1_low, scores.top1_high), _metric("acc5", scores.top5),
            _metric("mean_per_class_recall", scores.mean_per_class_recall),
            _metric("macro_f1", scores.macro_f1, scores.macro_f1_low, scores.macro_f1_high)]


def calibration_metrics(calibration: Calibration) -> list[Row]:
    """ECE, NLL and Brier as predicted, then after temperature scaling (``_scaled``)."""
    return [_metric(f"{name}{suffix}", getattr(scores, name))
            for suffix, scores in (("", calibration.before), ("_scaled", calibration.after))
            for name in ("ece", "nll", "brier")]


def runs_metrics(runs: RunsTop1) -> list[Row]:
    """Top-1 over seeded runs: the mean, with the interval of the mean."""
    return [_metric("acc1", runs.mean_top1, runs.top1_low, runs.top1_high)]


def fewshot_k(shots: Shots) -> int:
    return EVERY_TRAIN_IMAGE if shots.label == "all" else shots.k


def shift_metrics(row: ShiftRow) -> list[Row]:
    """A classifier's numbers on a shift set (or the shift average), each with its interval."""
    def estimate(name: str, value: Estimate) -> Row:
        return _metric(name, value.value, value.low, value.high)

    return [estimate("acc1", row.shift), estimate("acc1_source", row.source), estimate("drop", row.drop),
            estimate("effective_robustness", row.effective_robustness)]


def shift_rows(pair: PairMetrics, shift: str, rows: list[ShiftRow]) -> list[Row]:
    """The distribution_shift rows of one shift set (or ``AVERAGE``) in shift.json's order, the prompt, k and alpha
    columns as the other tasks fill them: a zero-shot row as every ``template``/``ensemble``, the chosen one also as
    ``zeroshot`` (first); zsinit_mix's alpha from zsinit.json."""
    mix_alpha = {point.shots.label: point.mix.mean_alpha for point in (pair.zsinit.curve if pair.zsinit else ())}
    found: list[Row] = []
    for row in rows:
        columns = {"shift": shift, "task": "distribution_shift", "classifier": row.classifier, "prompt": None,
                   "fewshot_k": None if row.k is None else (EVERY_TRAIN_IMAGE if row.k == "all" else int(row.k)),
                   "alpha": row.alpha if row.classifier != "zsinit_mix" else mix_alpha.get(row.k)}
        if row.classifier == "zeroshot":
            key = row.name.split("/", 1)[1]
            kinds = ["zeroshot"] if row.chosen else []
            kinds.append("template" if key in pair.zeroshot.templates else "ensemble")
            found += [{**columns, "classifier": kind, "prompt": key, **metric} for kind in kinds
                      for metric in shift_metrics(row)]
        else:
            found += [{**columns, **metric} for metric in shift_metrics(row)]
    return found


def pair_rows(model: str, dataset: str, pair: PairMetrics, shifts: dict[str, list[ShiftRow]] | None = None) -> list[Row]:
    """Every row of one model on one dataset, in the table's order: tasks as ``TASKS``, then each file's order;
    ``shifts``: the dataset's shift sets (params order, then ``AVERAGE``) -> their rows."""
    rows: list[Row] = []

    def add(task: str, classifier: str, metrics: list[Row], prompt: str | None = None, k: int | None = None,
            alpha: float | None = None) -> None:
        rows.extend({"task": task, "classifier": classifier, "prompt": prompt, "fewshot_k": k, "alpha": alpha,
                     **metric} for metric in metrics)

    zeroshot = pair.zeroshot
    chosen = zeroshot.results()[zeroshot.best].test
    add("zeroshot_classification", "zeroshot", score_metrics(chosen) + calibration_metrics(zeroshot.calibration),
        prompt=zeroshot.best)
    for key, template in zeroshot.templates.items():
        add("zeroshot_classification", "template", score_metrics(template.scores.test), prompt=key)
    for key, ensemble in (zeroshot.ensembles or {}).items():
        add("zeroshot_classification", "ensemble", score_metrics(ensemble.scores.test), prompt=key)
    add("zeroshot_classification", "dot_product", score_metrics(pair.similarity.dot.test),
        prompt=pair.similarity.template)
    for key, probe in (("probe", pair.probe), ("logreg", pair.logreg)):
        add("linear_probe", key, score_metrics(probe.test) + calibration_metrics(probe.calibration))
    for point in pair.fewshot.curve:
        add("fewshot_linear_probe", "logreg", runs_metrics(point.test), k=fewshot_k(point.shots))
    for point in pair.zsinit.curve if pair.zsinit else ():
        k = fewshot_k(point.shots)
        add("fewshot_zeroshot_init", "zsinit", runs_metrics(point.init), k=k)
        add("fewshot_zeroshot_init", "zsinit_mix", runs_metrics(point.mix), k=k, alpha=point.mix.mean_alpha)
    for shift, shift_table in (shifts or {}).items():
        rows += shift_rows(pair, shift, shift_table)
    return [{"model": model, "pretrained": pair.extract.checkpoint, "dataset": dataset, "shift": None, **row}
            for row in rows]


def retrieval_rows(model: str, checkpoint: str, metrics: RetrievalMetrics) -> list[Row]:
    """The zeroshot_retrieval rows of one model on one caption set: per direction, image_to_text first, each
    recall@k under CLIP_benchmark's name, then the mean and the median rank."""
    rows: list[Row] = []
    for classifier, direction in (("image_to_text", metrics.image_to_text), ("text_to_image", metrics.text_to_image)):
        found = [_metric(f"{direction.benchmark_name}_{key}", value.value, value.low, value.high)
                 for key, value in direction.recall.items()]
        found += [_metric("mean_rank", direction.mean_rank.value, direction.mean_rank.low, direction.mean_rank.high),
                  _metric("median_rank", direction.median_rank)]
        rows += [{"task": "zeroshot_retrieval", "classifier": classifier, "prompt": metrics.template,
                  "fewshot_k": None, "alpha": None, **metric} for metric in found]
    return [{"model": model, "pretrained": checkpoint, "dataset": metrics.caption_set, "shift": None, **row}
            for row in rows]


def results_table(pairs: dict[tuple[str, str], PairMetrics],
                  shifts: dict[tuple[str, str], dict[str, list[ShiftRow]]] | None = None,
                  retrieval: dict[str, dict[str, RetrievalMetrics]] | None = None) -> pd.DataFrame:
    """The table of every (model, dataset) pair, in the order of ``pairs`` (the params' models, then datasets);
    ``shifts``: (model, dataset) -> its shift sets' rows (``pair_rows``), for the pairs of a dataset with some;
    ``retrieval``: caption set -> model -> its retrieval.json (params order), each model's rows after its datasets'
    (its checkpoint: its pairs')."""
    checkpoints: dict[str, str] = {}
    for (model, _), pair in pairs.items():
        checkpoints.setdefault(model, pair.extract.checkpoint)
    missing = [model for by_model in (retrieval or {}).values() for model in by_model if model not in checkpoints]
    if missing:
        raise ValueError(f"retrieval rows of {missing[0]}, a model with no (model, dataset) pair")
    rows: list[Row] = []
    for model in checkpoints:
        rows += [row for (name, dataset), pair in pairs.items() if name == model
                 for row in pair_rows(model, dataset, pair, (shifts or {}).get((model, dataset)))]
        rows += [row for by_model in (retrieval or {}).values() if model in by_model
                 for row in retrieval_rows(model, checkpoints[model], by_model[model])]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)


def write_results(table: pd.DataFrame, path: str | Path) -> None:
    """The table as CSV: floats as Python's repr, the shortest text that reads back as the same number; empty
    cells where there is no value."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, na_rep="", lineterminator="\n")


def _float(text: str) -> float:
    """A float cell read exactly (Python's parser, whatever pandas' version defaults to); empty: NaN."""
    return float(text) if text else math.nan


def load_results(folder: str | Path) -> pd.DataFrame:
    """The results table of a metrics folder (``<folder>/results.csv``, e.g. ``load_results("demo/metrics")``)
    as written: ``COLUMNS``' dtypes, strings and fewshot_k missing as <NA>, floats as NaN."""
    path = Path(folder) / FILE
    fix = "rebuild it with `dvc repro leaderboard`"
    floats = [name for name, dtype in COLUMNS.items() if dtype == "float64"]
    table = pd.read_csv(io.StringIO(read_text(path, fix=fix)), keep_default_na=False, na_values=[""],
                        dtype={name: dtype for name, dtype in COLUMNS.items() if name not in floats},
                        converters={name: _float for name in floats})
    if list(table.columns) != list(COLUMNS):
        raise BadFileError(path, f"has the columns {', '.join(table.columns)}, not {', '.join(COLUMNS)}", fix)
    return table.astype(COLUMNS)
