"""Stage zsinit: the few-shot curve of a linear head that starts as the zero-shot classifier (the zeroshot stage's
chosen template or ensemble) and is trained on k images per class, and of its mix with zero-shot, the mixing
weight chosen on a validation split. Same k and seeds as the fewshot stage, same test images. Its heads file keeps
every run's trained head and mix (the logit scale folded in), so shift sets are scored without training again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.features import count_classes, load_splits
from clip_study.data.subset import validation_split
from clip_study.errors import BadFileError
from clip_study.evaluation.fewshot import shot_counts
from clip_study.evaluation.heads import Heads, save_heads
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.zeroshot_init import (HeadTraining, alpha_grid, head_from_text_features, predict, run_heads,
                                                 zsinit_point)
from clip_study.files import load_npz, read_json, write_json
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.metrics_files.zsinit import ZsinitMetrics, ZsinitPlotRow, ZsinitPoint
from clip_study.pipeline.params import for_param, load_params, section
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.fewshot import FEWSHOT
from clip_study.pipeline.sections.zsinit import ZSINIT
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def read_chosen_classifier(metrics: str, folder: str, num_classes: int, dim: int) -> tuple[str, np.ndarray, float]:
    """The key the zeroshot stage chose (``best``), its (C, D) class text embeddings and the logit scale."""
    fix = rebuild("zeroshot")
    record = ZeroshotMetrics.from_json(read_json(metrics, fix=fix))
    best, scale = record.best, record.logit_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
        raise BadFileError(metrics, f"'logit_scale' is {scale!r}, not a number > 0", fix)
    path = Path(folder) / "text_features.npz"
    text = load_npz(path, fix)[best]
    if text.shape != (num_classes, dim) or not np.isfinite(text).all():
        raise BadFileError(path, f"'{best}' holds {text.shape} values, not finite ({num_classes}, {dim}) class "
                                 "embeddings for these features", fix)
    return str(best), text, float(scale)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"features": REQUIRED, "zeroshot": REQUIRED, "zeroshot_metrics": REQUIRED,
                                "metrics": REQUIRED, "curve": REQUIRED, "heads": REQUIRED}, argv)
    params = load_params(args.params, FEWSHOT, ZSINIT, EVALUATION)  # ranges checked there
    shots, settings, evaluation = (section(params, name) for name in ("fewshot", "zsinit", "evaluation"))
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"))
    num_classes = count_classes(train_y, test_y)
    key, text, logit_scale = read_chosen_classifier(args.zeroshot_metrics, args.zeroshot, num_classes,
                                                    train_x.shape[1])
    with for_param("evaluation.val_fraction"):
        fit, val = validation_split(train_y, evaluation["val_fraction"], evaluation["seed"])
    k_all = int(np.bincount(train_y[fit]).max())
    ks, covered = shot_counts(shots["shots"], k_all)
    if covered:
        print(f"zsinit: shots {covered} reach the {k_all} fit images per class: they are the 'all' point")
    training = HeadTraining(steps=settings["steps"], lr=settings["lr"], weight_decay=settings["weight_decay"],
                            alphas=alpha_grid(settings["alpha_steps"]))
    bootstrap = Bootstrap(resamples=evaluation["resamples"], seed=evaluation["seed"],
                          confidence=evaluation["confidence"])
    start = head_from_text_features(text)
    val_zero_shot = float(np.mean(predict(train_x[val], start, logit_scale) == train_y[val]))
    test_zero_shot = float(np.mean(predict(test_x, start, logit_scale) == test_y))
    print(f"zsinit: zero-shot '{key}' test top-1 {test_zero_shot:.4f}, validation {val_zero_shot:.4f}")

    curve, heads, info, predictions = [], [], [], []
    for k, label in [*((k, str(k)) for k in ks), (k_all, "all")]:
        runs = [shots["seed"]] if label == "all" else [shots["seed"] + s for s in range(shots["seeds"])]
        result = zsinit_point((train_x[fit], train_y[fit]), (train_x[val], train_y[val]), (test_x, test_y), start,
                              logit_scale, k, label, runs, training, bootstrap)
        point = ZsinitPoint.from_json(result.point)
        curve.append(point)
        saved = run_heads(result, runs, start, logit_scale, test_y)
        heads, info, predictions = heads + saved.heads, info + saved.info, [*predictions, saved.predictions]
        print(f"zsinit: k={label}  {len(runs)} run(s)  init {point.init.mean_top1:.4f}  mix "
              f"{point.mix.mean_top1:.4f} [{point.mix.top1_low:.4f}, {point.mix.top1_high:.4f}]"
              f"  mean alpha {point.mix.mean_alpha:.2f}")

    save_heads(args.heads, Heads(heads, info, np.concatenate(predictions), test_y, val))
    write_json(args.curve, [ZsinitPlotRow.of(point).to_json() for point in curve])
    write_json(args.metrics, ZsinitMetrics(
        num_classes=num_classes, zero_shot=key, logit_scale=logit_scale,
        zero_shot_top1=round(test_zero_shot, 6), zero_shot_val_top1=round(val_zero_shot, 6),
        num_fit_images=int(len(fit)), num_val_images=int(len(val)), alphas=list(training.alphas),
        curve=curve).to_json())


if __name__ == "__main__":
    run(main)
