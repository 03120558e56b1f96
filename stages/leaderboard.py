"""Stage leaderboard: every model of the params on every dataset of the params side by side (zero-shot with the
best template and the ensembles, the linear and logistic probes, few-shot at 16 per class), each model's mean
top-1 and average rank over the datasets with paired bootstrap intervals, each model compared with each
dataset's leader on the same test images; for each dataset with shift sets (params shifts), every model's
classifiers on the average over all of them, rerun from the shift stage's predictions files
(data/predictions/<model>/<shift>.npz) beside each set's shift.json; for each caption set (params captions), each
model's retrieval.json against each direction and recall@k's leader, paired on the retrieval stage's ranks files
(data/predictions/<model>/<captions>.npz); every score in one table (results.csv); and the study's front page,
metrics/report.md, with its figures and the study's own notes (``--notes``: a markdown file)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, Callable

from clip_study.evaluation.intervals import Bootstrap
from clip_study.files import load_npz, read_text, write_json
from clip_study.metrics_files.retrieval import RetrievalMetrics
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.sections.datasets import DATASETS
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.sections.shifts import SHIFTS
from clip_study.pipeline.stage import parse_args, rebuild, run
from clip_study.reporting.leaderboard import build_leaderboard, leaderboard_report, plot_heatmap, plot_leaderboard
from clip_study.reporting.pairs import read_pair
from clip_study.evaluation.shift import AVERAGE
from clip_study.reporting.results_table import results_table, write_results
from clip_study.reporting.retrieval_board import (build_retrieval_boards, leader_comparisons, read_retrieval,
                                                  recall_ks)
from clip_study.reporting.shift_board import build_shift_boards, plot_shift_average, read_shift_inputs, shift_sets


def relative(path: Path, start: Path) -> str:
    """``path`` as a link from a file in the folder ``start``."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def rebuild_pair(model: str, dataset: str) -> Callable[[str], str]:
    """The fix for a damaged file of a pair, by the stage that writes it: rerun ``<stage>@<model>-<dataset>``."""
    return lambda stage: rebuild(f"{stage}@{model}-{dataset}")


def rebuild_by(stage: str) -> Callable[[str, str], str]:
    """The fix for a damaged file that ``stage`` writes per (model, shift set or caption set): rerun that pair."""
    return lambda model, name: rebuild_pair(model, name)(stage)


def compare_ranks(predictions_dir: Path, retrieval: dict[str, dict[str, RetrievalMetrics]], bootstrap: Bootstrap,
                  caption_set: str, model: str, leader: str) -> dict[str, Any]:
    """``leader_comparisons``' compare (the last three arguments): model minus leader, paired on both models' ranks
    files (the retrieval stage's data/predictions/<model>/<captions>.npz) at the k of their retrieval.json."""
    from clip_study.evaluation.retrieval import Ranks, compare_retrieval  # only caption sets have ranks files

    mine, theirs = (Ranks.load(predictions_dir / name / f"{caption_set}.npz",
                               fix=rebuild_by("retrieval")(name, caption_set)) for name in (model, leader))
    return compare_retrieval(mine, theirs, recall_ks(retrieval[caption_set][model]), bootstrap)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"metrics_dir": "metrics/models", "predictions": "data/predictions",
                                "out": "metrics/leaderboard.json", "results": "metrics/results.csv",
                                "report": "metrics/report.md", "figures": "metrics/figures", "notes": ""}, argv)
    params = load_params(args.params, MODELS, DATASETS, SHIFTS, CAPTIONS, EVALUATION)  # `of` names a dataset: checked
    models = list(section(params, "models"))
    datasets = list(section(params, "datasets"))
    metrics_dir, predictions_dir = Path(args.metrics_dir), Path(args.predictions)
    pairs = {model: {dataset: read_pair(metrics_dir / model / dataset, fix=rebuild_pair(model, dataset))
                     for dataset in datasets} for model in models}
    predictions = {model: {dataset: load_npz(predictions_dir / model / f"{dataset}.npz",
                                             fix=rebuild_pair(model, dataset)("summary"))
                           for dataset in datasets} for model in models}
    shifts = shift_sets({shift: entry["of"] for shift, entry in (section(params, "shifts") or {}).items()}, datasets)
    shift_inputs = {model: {dataset: read_shift_inputs(metrics_dir, predictions_dir, model, names, rebuild_by("shift"))
                            for dataset, names in shifts.items()} for model in models}
    bootstrap = bootstrap_settings(params)
    shift_boards, averages = build_shift_boards(shift_inputs, bootstrap, rebuild_by("shift"))
    caption_sets = list(params.get("captions") or {})  # absent or {}: no retrieval anywhere
    retrieval = read_retrieval(metrics_dir, models, caption_sets, rebuild_by("retrieval"))
    comparisons = leader_comparisons(retrieval, partial(compare_ranks, predictions_dir, retrieval, bootstrap))
    retrieval_boards = build_retrieval_boards(retrieval, comparisons)
    board = build_leaderboard(pairs, predictions, bootstrap, shift_boards, retrieval_boards)
    shift_rows = {(model, dataset): {**{shift: metrics.classifiers for shift, (metrics, _) in inputs.items()},
                                     AVERAGE: averages[model, dataset]}
                  for model, by_dataset in shift_inputs.items() for dataset, inputs in by_dataset.items()}
    table = results_table({(model, dataset): pairs[model][dataset] for model in models for dataset in datasets},
                          shift_rows, retrieval)

    report, figures = Path(args.report), Path(args.figures)
    drawn = [plot_heatmap(board, figures), plot_leaderboard(board, figures),
             *(plot_shift_average(dataset, shift_board, figures) for dataset, shift_board in shift_boards.items())]
    links = {name: relative(figures / name, report.parent) for name in drawn}
    reports = {(model, dataset): relative(metrics_dir / model / dataset / "report.md", report.parent)
               for model in models for dataset in datasets}
    robustness = {(model, shift): relative(metrics_dir / model / shift / "figures" / "robustness.png", report.parent)
                  for model in models for names in shifts.values() for shift in names}
    examples = {(model, caption_set): relative(metrics_dir / model / caption_set / "figures" / "retrieval.png",
                                               report.parent) for model in models for caption_set in retrieval}
    write_json(args.out, board.to_json())
    write_results(table, args.results)
    notes = read_text(args.notes) if args.notes else ""
    report.write_text(leaderboard_report(board, links, reports, notes, robustness, examples))
    print(f"leaderboard: {len(models)} model(s) on {len(datasets)} dataset(s), leader {board.leader} -> {args.out}, "
          f"{args.results}, {report}")
    for dataset, shift_board in shift_boards.items():
        print(f"  shift average of {dataset} over {', '.join(shift_board.shift_sets)}")
    for caption_set, retrieval_board in retrieval_boards.items():
        print(f"  retrieval on {caption_set}: leaders {retrieval_board.leaders.to_json()}")


if __name__ == "__main__":
    run(main)
