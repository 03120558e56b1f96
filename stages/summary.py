"""Stage summary: zero-shot (the classifier chosen on train images) against the linear probes, each with
its bootstrap interval and a paired test against zero-shot on the same test images, with the labelled data
each needs, as JSON (a DVC metrics file: numbers only, under the model's then the dataset's short name so that keys from
several models and datasets never clash), the paired tests with their verdicts (``--paired``) and a markdown table; and
where the few-shot probe overtakes zero-shot. ``--predictions`` gathers the three classifiers' test
predictions for the leaderboard's paired tests between models."""

from __future__ import annotations

from pathlib import Path

from clip_study.files import load_npz, read_json, save_npz, write_json
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.heldout import HeldoutMetrics
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.similarity import SimilarityMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.metrics_files.zsinit import ZsinitMetrics
from clip_study.pipeline.sections.probe import TRAINING_BUDGET
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run
from clip_study.reporting.summary import build_summary, paired_tests, summary_table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"zeroshot": REQUIRED, "similarity": REQUIRED, "probe": REQUIRED, "logreg": REQUIRED,
                                "fewshot": REQUIRED, "heldout": "", "zsinit": "", "zeroshot_predictions": REQUIRED,
                                "probe_predictions": REQUIRED, "logreg_predictions": REQUIRED, "out": REQUIRED,
                                "paired": REQUIRED, "table": REQUIRED, "predictions": ""}, argv, per_model=True,
                      per_dataset=True)
    inputs = {"zeroshot": (args.zeroshot, ZeroshotMetrics), "similarity": (args.similarity, SimilarityMetrics),
              "probe": (args.probe, ProbeMetrics), "logreg": (args.logreg, LogregMetrics),
              "fewshot": (args.fewshot, FewshotMetrics), "heldout": (args.heldout, HeldoutMetrics),
              "zsinit": (args.zsinit, ZsinitMetrics)}  # by the stage writing each
    read = {stage: record.from_json(read_json(path, fix=rebuild(stage))) if path else None
            for stage, (path, record) in inputs.items()}
    zeroshot = load_npz(args.zeroshot_predictions, fix=rebuild("zeroshot"))
    probe = load_npz(args.probe_predictions, fix=rebuild("probe"))
    logreg = load_npz(args.logreg_predictions, fix=rebuild("logreg"))
    best = read["zeroshot"].best
    paired = paired_tests(zeroshot["labels"], zeroshot[best], probe["chosen"], logreg["chosen"],
                          read["similarity"].dot.vs_cosine)
    summary = build_summary(paired=paired, **read)
    table = summary_table(summary, read["zeroshot"], read["similarity"], read["probe"], read["logreg"],
                          read["fewshot"], paired, probe_budget=TRAINING_BUDGET)
    keyed = summary.to_json()
    for name in (args.dataset, args.model):  # model, then dataset, over the numbers: one key path per pair
        keyed = {name: keyed} if name else keyed
    write_json(args.out, keyed)  # all made first
    if args.predictions:
        save_npz(Path(args.predictions), labels=zeroshot["labels"], zeroshot=zeroshot[best],
                 probe=probe["chosen"], logreg=logreg["chosen"])
    write_json(args.paired, paired.to_json())
    Path(args.table).write_text(table)
    print(table)


if __name__ == "__main__":
    run(main)
