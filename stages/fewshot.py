"""Stage fewshot: the paper's few-shot curve. The logistic probe trained on k random train images per
class (several seeds per k), then on all of them, each tested on the full test set. The summary stage
compares it with zero-shot (how many labelled images per class does the probe need to win?), so that a
prompt sweep never refits these probes. Its heads file keeps every run's probe, so shift sets are scored without
fitting again."""

from __future__ import annotations

import numpy as np

from clip_study.data.features import count_classes, load_splits
from clip_study.errors import BadFileError
from clip_study.evaluation.heads import Heads, save_heads
from clip_study.evaluation.fewshot import curve_point, shot_counts
from clip_study.files import read_json, write_json
from clip_study.metrics_files.fewshot import CurvePoint, FewshotMetrics, FewshotPlotRow
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.fewshot import FEWSHOT
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def chosen_C(path: str) -> float:
    """The C the logreg stage picked by its validation sweep."""
    C = LogregMetrics.from_json(read_json(path, fix=rebuild("logreg"))).C
    if isinstance(C, bool) or not isinstance(C, (int, float)) or C <= 0:
        raise BadFileError(path, f"'C' is {C!r}, not a number > 0", rebuild("logreg"))
    return float(C)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"features": REQUIRED, "logreg_metrics": REQUIRED, "metrics": REQUIRED,
                                "curve": REQUIRED, "heads": REQUIRED}, argv)
    all_params = load_params(args.params, FEWSHOT, EVALUATION)  # ranges checked there
    params, bootstrap = section(all_params, "fewshot"), bootstrap_settings(all_params)
    seeds, seed = params["seeds"], params["seed"]
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"))
    k_all = int(np.bincount(train_y).max())
    shots, covered = shot_counts(params["shots"], k_all)
    if covered:
        print(f"fewshot: shots {covered} reach the {k_all} train images per class: they are the 'all' point")
    # The C the logreg stage chose on all of train, for every k: sweeping C again per k (on a validation
    # split of k images per class, too small to judge by) would cost 13x the fits.
    C = chosen_C(args.logreg_metrics)

    curve, heads, info, predictions = [], [], [], []
    for k, label in [*((k, str(k)) for k in shots), (k_all, "all")]:
        runs = [seed] if label == "all" else [seed + s for s in range(seeds)]
        point = curve_point(train_x, train_y, test_x, test_y, k, label, C, runs, bootstrap)
        curve.append(CurvePoint.from_json(point.point))
        heads += point.heads
        predictions.append(point.predictions)
        info += [{"name": f"fewshot/k={label}/seed={run}", "classifier": "fewshot", "k": int(k), "label": label,
                  "seed": int(run)} for run in runs]
        print(f"fewshot: k={label}  {len(runs)} run(s)  test top-1 {curve[-1].test.mean_top1:.4f} "
              f"± {curve[-1].test.std_top1:.4f}")

    save_heads(args.heads, Heads(heads, info, np.concatenate(predictions), test_y))
    write_json(args.curve, [FewshotPlotRow.of(point).to_json() for point in curve])
    write_json(args.metrics, FewshotMetrics(num_classes=count_classes(train_y, test_y), C=C, curve=curve).to_json())


if __name__ == "__main__":
    run(main)
