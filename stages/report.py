"""Stage report: every metrics file of the study as one markdown report with PNG figures beside it,
readable offline (GitHub or any markdown viewer; no JavaScript), plus per-class accuracies for DVC plots."""

from __future__ import annotations

import os
from pathlib import Path

from clip_study.files import write_json
from clip_study.pipeline.sections.probe import TRAINING_BUDGET
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run
from clip_study.reporting.figures import draw_figures
from clip_study.reporting.report import build_report
from clip_study.reporting.results import load_model_results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"metrics_dir": REQUIRED, "out": REQUIRED, "figures": REQUIRED, "per_class": REQUIRED},
                      argv)
    figures, out = Path(args.figures), Path(args.out)
    results = load_model_results(Path(args.metrics_dir), fix=rebuild)
    drawn = draw_figures(results, figures)
    relative = Path(os.path.relpath(figures.resolve(), out.resolve().parent)).as_posix()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(results, drawn, relative, probe_budget=TRAINING_BUDGET))
    write_json(args.per_class, [row.to_json() for row in results.errors.per_class] if results.errors else [])
    print(f"report: {out}, {len(drawn)} figures in {figures}, per-class accuracy in {args.per_class}")


if __name__ == "__main__":
    run(main)
