"""Stage wiseft: WiSE-FT's alpha curve on the source. The zeroshot stage's chosen head mixed in weight space with
the logistic probe (logreg) and with the zero-shot-initialised head trained on all its images (zsinit), alpha from 0
(zero-shot) to 1 (the fitted head) in steps of 0.1, each mix scored on the test images with a bootstrap interval;
alpha is chosen on a validation split the fitted side never trained on. Nothing is fitted: the heads come from the
fitting stages' heads files, and the mixes are saved as heads for the shift sets."""

from __future__ import annotations

from clip_study.data.features import count_classes, load_splits
from clip_study.evaluation.heads import load_heads, save_heads
from clip_study.evaluation.wiseft import HeadsFile, source_curves
from clip_study.files import write_json
from clip_study.metrics_files.wiseft import WiseftMetrics, WiseftPlotRow
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import load_params
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"features": REQUIRED, "zeroshot_heads": REQUIRED, "logreg_heads": REQUIRED,
                                "zsinit_heads": REQUIRED, "heads": REQUIRED, "metrics": REQUIRED, "curve": REQUIRED},
                      argv)
    bootstrap = bootstrap_settings(load_params(args.params, EVALUATION))  # ranges checked there
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"))
    files = [HeadsFile(load_heads(path, rebuild(stage)), path, rebuild(stage))
             for stage, path in (("zeroshot", args.zeroshot_heads), ("logreg", args.logreg_heads),
                                 ("zsinit", args.zsinit_heads))]
    result = source_curves(*files, (train_x, train_y), (test_x, test_y), count_classes(train_y, test_y), bootstrap)
    metrics = WiseftMetrics.from_json(result.metrics)
    for name, curve in metrics.curves.items():
        ends = (curve.rows[0].test.top1, curve.rows[-1].test.top1)
        print(f"wiseft: {name}  zero-shot {ends[0]:.4f}  fitted {ends[1]:.4f}  alpha {curve.chosen_alpha:g} chosen "
              f"on {curve.num_val_images} validation images: test top-1 {curve.chosen_test.top1:.4f}")

    save_heads(args.heads, result.heads)
    write_json(args.curve, [WiseftPlotRow(**row).to_json() for row in result.plot])
    write_json(args.metrics, metrics.to_json())


if __name__ == "__main__":
    run(main)
