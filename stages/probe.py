"""Stage probe: a linear classifier (one nn.Linear, Adam) on the frozen train image embeddings, tested
after every epoch on the same test images as zero-shot.

The epoch reported as the headline is chosen on validation data: a first run trains on train minus a
stratified validation split and scores that split after every epoch; the study's run then trains on all
of train, and its test score at the chosen epoch is the headline (with a bootstrap interval). The final
epoch (the study's fixed budget) and the test-picked "oracle" epoch are kept beside it. The headline's
probabilities are calibrated by a temperature fitted on the first run's validation scores. Its heads file keeps the
chosen epoch's layer, so shift sets are scored without training again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.features import count_classes, load_splits
from clip_study.data.subset import read_classes, validation_split
from clip_study.evaluation.calibration import calibration_report
from clip_study.evaluation.heads import Heads, save_heads
from clip_study.evaluation.linear_probe import train_linear_probe
from clip_study.evaluation.metrics import classification_metrics, confusion_rows, scored
from clip_study.files import save_npz, write_json
from clip_study.metrics_files.probe import FinalEpoch, ProbeCurveRow, ProbeMetrics
from clip_study.metrics_files.scores import Calibration, ClassificationScores, ConfusionRow, Scores
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import for_param, load_params, section
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.probe import PROBE
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "features": REQUIRED, "out": REQUIRED, "metrics": REQUIRED,
                                "curve": REQUIRED, "confusion": REQUIRED, "heads": REQUIRED}, argv)
    all_params = load_params(args.params, PROBE, EVALUATION)  # ranges checked there
    params, evaluation, bootstrap = section(all_params, "probe"), section(all_params, "evaluation"), \
        bootstrap_settings(all_params)
    names = [c["name"] for c in read_classes(args.subset, fix=rebuild("fetch"))]
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"), len(names))
    num_classes = count_classes(train_y, test_y)
    settings = dict(epochs=params["epochs"], lr=float(params["lr"]), batch_size=params["batch_size"],
                    weight_decay=float(params["weight_decay"]), seed=params["seed"])

    with for_param("evaluation.val_fraction"):
        fit, val = validation_split(train_y, float(evaluation["val_fraction"]), evaluation["seed"])
    val_curve, val_scores = [], {}
    for epoch, _, scores, _ in train_linear_probe(train_x[fit], train_y[fit], train_x[val], num_classes, **settings):
        val_curve.append(round(float((scores.argmax(axis=1) == train_y[val]).mean()), 6))
        val_scores[epoch] = scores
    chosen = int(np.argmax(val_curve)) + 1  # the first epoch with the best validation top-1
    print(f"probe: epoch {chosen} chosen on {len(val)} validation images (top-1 {val_curve[chosen - 1]:.4f})")

    curve, kept, layers = [], {}, {}
    for epoch, loss, scores, layer in train_linear_probe(train_x, train_y, test_x, num_classes, **settings):
        curve.append(ProbeCurveRow(epoch=epoch, train_loss=round(loss, 6), val_top1=val_curve[epoch - 1],
                                   test=ClassificationScores(**classification_metrics(test_y, scores))))
        if epoch in (chosen, settings["epochs"]):
            kept[epoch], layers[epoch] = scores, layer
        print(f"probe: epoch {epoch}  loss {loss:.4f}  test top-1 {curve[-1].test.top1:.4f}")

    headline, final = (Scores(**scored(test_y, kept[epoch], bootstrap)) for epoch in (chosen, settings["epochs"]))
    oracle = max(curve, key=lambda row: row.test.top1)
    calibration = calibration_report(val_scores[chosen], train_y[val], kept[chosen], test_y,
                                     evaluation["calibration_bins"])
    predictions = kept[chosen].argmax(axis=1).astype(np.int64)
    save_npz(Path(args.out) / "test_predictions.npz", labels=test_y, chosen=predictions)
    save_heads(args.heads, Heads([layers[chosen]], [{"name": "probe", "classifier": "probe", "epoch": chosen}],
                                 predictions[None], test_y))
    write_json(args.curve, [row.to_json() for row in curve])
    confusion = confusion_rows(test_y, kept[chosen].argmax(axis=1), names)
    write_json(args.confusion, [ConfusionRow(**row).to_json() for row in confusion])
    write_json(args.metrics, ProbeMetrics(
        num_classes=num_classes, num_train_images=int(len(train_y)), num_test_images=int(len(test_y)),
        epochs=len(curve), chosen_epoch=chosen, chosen_on=f"{len(val)} validation images", test=headline,
        final=FinalEpoch(epoch=len(curve), test=final), oracle_epoch=oracle.epoch, oracle_top1=oracle.test.top1,
        calibration=Calibration.from_json(calibration),
    ).to_json())


if __name__ == "__main__":
    run(main)
