"""Stage summary: zero-shot (best template) against the linear probes, with the labelled data each
needs, as JSON and a markdown table; and where the few-shot probe overtakes zero-shot."""

from __future__ import annotations

from pathlib import Path

from clip_study.files import read_json, write_json
from clip_study.pipeline.stage import parse_args, rebuild, run
from clip_study.reporting.summary import build_summary, summary_table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"zeroshot": "metrics/zeroshot.json", "similarity": "metrics/similarity.json",
                                "probe": "metrics/probe.json", "logreg": "metrics/logreg.json",
                                "fewshot": "metrics/fewshot.json", "out": "metrics/summary.json",
                                "table": "metrics/summary.md"}, argv)
    inputs = {"zeroshot": args.zeroshot, "similarity": args.similarity, "probe": args.probe, "logreg": args.logreg,
              "fewshot": args.fewshot}  # the stage that writes each
    summary = build_summary(*(read_json(path, fix=rebuild(stage)) for stage, path in inputs.items()))
    write_json(args.out, summary)
    Path(args.table).write_text(summary_table(summary))
    print(summary_table(summary))


if __name__ == "__main__":
    run(main)
