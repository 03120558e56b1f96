"""Stage leaderboard: every model of the params on every dataset of the params side by side (zero-shot with the
best template and the ensembles, the linear and logistic probes, few-shot at 16 per class), each model's mean
top-1 and average rank over the datasets with paired bootstrap intervals, each model compared with each
dataset's leader on the same test images; every score of every pair in one table (results.csv); and the study's
front page, metrics/report.md, with its figures and the study's own notes (``--notes``: a markdown file, shown
under the tables)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from clip_study.files import load_npz, read_text, write_json
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.sections.datasets import DATASETS
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.stage import parse_args, rebuild, run
from clip_study.reporting.leaderboard import build_leaderboard, leaderboard_report, plot_heatmap, plot_leaderboard
from clip_study.reporting.pairs import read_pair
from clip_study.reporting.results_table import results_table, write_results


def relative(path: Path, start: Path) -> str:
    """``path`` as a link from a file in the folder ``start``."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def rebuild_pair(model: str, dataset: str) -> Callable[[str], str]:
    """The fix for a damaged file of a pair, by the stage that writes it: rerun ``<stage>@<model>-<dataset>``."""
    return lambda stage: rebuild(f"{stage}@{model}-{dataset}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"metrics_dir": "metrics/models", "predictions": "data/predictions",
                                "out": "metrics/leaderboard.json", "results": "metrics/results.csv",
                                "report": "metrics/report.md", "figures": "metrics/figures", "notes": ""}, argv)
    params = load_params(args.params, MODELS, DATASETS, EVALUATION)
    models = list(section(params, "models"))
    datasets = list(section(params, "datasets"))
    metrics_dir, predictions_dir = Path(args.metrics_dir), Path(args.predictions)
    pairs = {model: {dataset: read_pair(metrics_dir / model / dataset, fix=rebuild_pair(model, dataset))
                     for dataset in datasets} for model in models}
    predictions = {model: {dataset: load_npz(predictions_dir / model / f"{dataset}.npz",
                                             fix=rebuild_pair(model, dataset)("summary"))
                           for dataset in datasets} for model in models}
    board = build_leaderboard(pairs, predictions, bootstrap_settings(params))
    table = results_table({(model, dataset): pairs[model][dataset] for model in models for dataset in datasets})

    report, figures = Path(args.report), Path(args.figures)
    drawn = [plot_heatmap(board, figures), plot_leaderboard(board, figures)]
    links = {name: relative(figures / name, report.parent) for name in drawn}
    reports = {(model, dataset): relative(metrics_dir / model / dataset / "report.md", report.parent)
               for model in models for dataset in datasets}
    write_json(args.out, board.to_json())
    write_results(table, args.results)
    notes = read_text(args.notes) if args.notes else ""
    report.write_text(leaderboard_report(board, links, reports, notes))
    print(f"leaderboard: {len(models)} model(s) on {len(datasets)} dataset(s), leader {board.leader} -> {args.out}, "
          f"{args.results}, {report}")


if __name__ == "__main__":
    run(main)
