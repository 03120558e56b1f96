"""Stage summary: zero-shot (best template) against the linear probes, with the labelled data each
needs, as JSON (the pipeline's one DVC metrics file: numbers only) and a markdown table; and where the
few-shot probe overtakes zero-shot."""

from __future__ import annotations

from pathlib import Path

from clip_study.files import read_json, write_json
from clip_study.pipeline.stage import parse_args, rebuild, run
from clip_study.reporting.summary import build_summary, summary_table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"zeroshot": "metrics/zeroshot.json", "similarity": "metrics/similarity.json",
                                "probe": "metrics/probe.json", "logreg": "metrics/logreg.json",
                                "fewshot": "metrics/fewshot.json", "heldout": "", "out": "metrics/summary.json",
                                "table": "metrics/summary.md"}, argv)
    inputs = {"zeroshot": args.zeroshot, "similarity": args.similarity, "probe": args.probe, "logreg": args.logreg,
              "fewshot": args.fewshot, "heldout": args.heldout}  # the stage that writes each (heldout: demo only)
    read = {stage: read_json(path, fix=rebuild(stage)) if path else None for stage, path in inputs.items()}
    summary = build_summary(**read)
    table = summary_table(summary, read["zeroshot"], read["similarity"], read["probe"], read["logreg"])
    write_json(args.out, summary)  # both made before either is written: a damaged input writes neither
    Path(args.table).write_text(table)
    print(table)


if __name__ == "__main__":
    run(main)
