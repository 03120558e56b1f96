"""Stage logreg: the CLIP paper's linear probe. L-BFGS logistic regression on the frozen, L2-normalised
train embeddings; C is swept on a log scale against a stratified validation split carved from train, then
the probe is refitted on all of train with the best C and tested on the same test images as zero-shot (with a
bootstrap interval); its probabilities are calibrated by a temperature fitted on the validation split. Its heads
file keeps the refitted probe and every probe of the sweep, so shift sets are scored without fitting again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.features import load_splits
from clip_study.data import subset
from clip_study.data.subset import read_classes
from clip_study.evaluation import logistic
from clip_study.evaluation.calibration import calibration_report
from clip_study.evaluation.heads import save_heads
from clip_study.evaluation.metrics import confusion_rows, scored
from clip_study.files import save_npz, write_json
from clip_study.metrics_files.logreg import LogregMetrics, SweepRow
from clip_study.metrics_files.scores import Calibration, ConfusionRow, Scores
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import for_param, load_params, section
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.logreg import LOGREG
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"features": REQUIRED, "subset": REQUIRED, "out": REQUIRED, "metrics": REQUIRED,
                                "sweep": REQUIRED, "confusion": REQUIRED, "heads": REQUIRED}, argv)
    all_params = load_params(args.params, LOGREG, EVALUATION)  # ranges checked there
    params = section(all_params, "logreg")
    Cs = logistic.C_grid(float(params["C_min"]), float(params["C_max"]), params["C_steps"])
    seed = params["seed"]
    names = [c["name"] for c in read_classes(args.subset, fix=rebuild("fetch"))]
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"), len(names))

    with for_param("logreg.val_fraction"):
        fit, val = subset.validation_split(train_y, float(params["val_fraction"]), seed)
    sweep = logistic.sweep_C(train_x[fit], train_y[fit], train_x[val], train_y[val], Cs, seed)
    for row in sweep.rows:
        print(f"logreg: C {row['C']:.4g}  validation top-1 {row['val_top1']:.4f}")
    C = logistic.best_C(sweep.rows)
    refit = logistic.fit_logistic(train_x, train_y, C, seed)
    scores = logistic.decision_scores(refit, test_x, len(names))
    test = Scores(**scored(test_y, scores, bootstrap_settings(all_params)))
    # the temperature is fitted on validation scores of the probe fitted without them (the sweep's, at this C)
    val_scores = logistic.decision_scores(sweep.models[[row["C"] for row in sweep.rows].index(C)], train_x[val],
                                          len(names))
    calibration = calibration_report(val_scores, train_y[val], scores, test_y,
                                     section(all_params, "evaluation")["calibration_bins"])
    print(f"logreg: best C {C:.4g}, refitted on all {len(train_y)} train images: test top-1 {test.top1:.4f}")

    save_npz(Path(args.out) / "test_predictions.npz", labels=test_y, scores=scores,
             chosen=scores.argmax(axis=1).astype(np.int64))
    save_heads(args.heads, logistic.logreg_heads(refit, C, sweep, (test_x, test_y), len(names), val))
    write_json(args.sweep, [SweepRow(**row).to_json() for row in sweep.rows])
    confusion = confusion_rows(test_y, scores.argmax(axis=1), names)
    write_json(args.confusion, [ConfusionRow(**row).to_json() for row in confusion])
    write_json(args.metrics, LogregMetrics(
        num_classes=len(names), num_train_images=int(len(train_y)), num_test_images=int(len(test_y)),
        C=C, val_top1=next(row["val_top1"] for row in sweep.rows if row["C"] == C), test=test,
        calibration=Calibration.from_json(calibration),
    ).to_json())


if __name__ == "__main__":
    run(main)
