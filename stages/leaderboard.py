"""Stage leaderboard: every model of the params side by side (zero-shot with the best template and the
ensembles, the linear and logistic probes, few-shot at 16 per class, size), each compared
with the leader on the same test images; and the study's front page, metrics/report.md."""

from __future__ import annotations

import os
from pathlib import Path

from clip_study.files import load_npz, read_json, write_json
from clip_study.metrics_files.extract import ExtractMetrics
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.stage import parse_args, rebuild, run
from clip_study.reporting.leaderboard import build_leaderboard, leaderboard_report, model_row, plot_leaderboard

READS = {"extract": ExtractMetrics, "zeroshot": ZeroshotMetrics, "probe": ProbeMetrics, "logreg": LogregMetrics,
         "fewshot": FewshotMetrics}  # each model's metrics files, by the stage writing them


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"metrics_dir": "metrics/models", "predictions": "data/predictions",
                                "out": "metrics/leaderboard.json", "report": "metrics/report.md",
                                "figures": "metrics/figures"}, argv)
    models = list(section(load_params(args.params, MODELS), "models"))
    rows, predictions = [], {}
    for short in models:
        folder = Path(args.metrics_dir) / short
        read = {name: record.from_json(read_json(folder / f"{name}.json", fix=rebuild(f"{name}@{short}")))
                for name, record in READS.items()}
        rows.append(model_row(short, **read))
        predictions[short] = load_npz(Path(args.predictions) / f"{short}.npz", fix=rebuild(f"summary@{short}"))
    board = build_leaderboard(rows, predictions, read["zeroshot"].num_classes)
    out = Path(args.report)
    figure = plot_leaderboard(board, Path(args.figures))
    relative = Path(os.path.relpath(Path(args.figures).resolve() / figure, out.resolve().parent)).as_posix()
    reports = {short: Path(os.path.relpath((Path(args.metrics_dir) / short / "report.md").resolve(),
                                           out.resolve().parent)).as_posix() for short in models}
    write_json(args.out, board.to_json())
    out.write_text(leaderboard_report(board, relative, reports))
    print(f"leaderboard: {len(models)} model(s), leader {board.leader} -> {args.out}, {out}")


if __name__ == "__main__":
    run(main)
