"""Stage shift: how much accuracy each classifier fitted on a source dataset keeps on a test-only shift set of it
(zero-shot, probes, few-shot, zsinit and WiSE-FT heads, logits restricted to the source classes the shift matches),
as source top-1, shift top-1 and the drop, with paired bootstrap intervals and each drop compared with zero-shot's.
Effective robustness is shift top-1 above the logit-axis line fitted through the probes trained on the source alone
(across k and C), and each WiSE-FT curve is tested for an interior alpha beating both ends on the shift.

The resamples: the source's with evaluation.seed, the shift's with evaluation.seed + 1, shared by every classifier."""

from __future__ import annotations

from pathlib import Path

from clip_study.data.class_map import read_class_map
from clip_study.data.features import load_features
from clip_study.errors import UserError
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.shift import acceptance, evaluate_shift
from clip_study.files import write_json
from clip_study.pipeline.params import load_params, named_entry, section
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.shifts import SHIFTS
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run
from clip_study.reporting.shift import alpha_rows, read_heads, save_predictions, score, shift_metrics
from clip_study.reporting.shift_figure import plot_robustness


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"heads": REQUIRED, "subset": REQUIRED, "features": REQUIRED, "metrics": REQUIRED,
                                "curve": REQUIRED, "figures": REQUIRED, "predictions": REQUIRED},
                      argv, per_model=True, per_shift=True)
    params = load_params(args.params, SHIFTS, EVALUATION)  # `of` names a dataset: checked there
    evaluation = section(params, "evaluation")
    shift, entry = named_entry(params, "shifts", args.shift)
    of = entry["of"]
    mapped_of, num_source_classes, matches = read_class_map(args.subset, fix=rebuild("fetch_shift"))
    if mapped_of != of:
        raise UserError(f"shifts.{shift}.of is {of!r} but {args.subset}/class_map.json maps to {mapped_of!r}: "
                        "make them one (fetch the shift again after changing 'of')")
    fitted_by = f"the stages that fit {args.model or 'the model'}'s classifiers on {of}"
    heads = read_heads(Path(args.heads) / of, fix=f"rebuild it with `dvc repro` ({fitted_by})")
    first = heads["zeroshot"].heads[0].weights
    if first.shape[0] != num_source_classes:
        raise UserError(f"{args.subset}/class_map.json counts {num_source_classes} classes of {of}, its heads "
                        f"{first.shape[0]}: fetch the shift again")
    features, labels = load_features(Path(args.features) / "test.npz", rebuild("extract_shift"), len(matches))
    if features.shape[1] != first.shape[1]:
        raise UserError(f"{args.features}/test.npz holds {features.shape[1]}-d features, the heads of {of} score "
                        f"{first.shape[1]}-d ones: extract the shift with the same model")
    accepts = acceptance(matches, num_source_classes)
    scores = score(heads, features, labels, accepts)
    bootstrap = Bootstrap(resamples=evaluation["resamples"], seed=evaluation["seed"],
                          confidence=evaluation["confidence"])
    result = evaluate_shift(scores.source, [scores.shift], bootstrap, reference=scores.reference,
                            fit_set=scores.fit_set, curves=list(scores.curves.values()))
    metrics = shift_metrics(shift, of, scores, result, bootstrap, len(matches), num_source_classes,
                            int(accepts.any(axis=0).sum()))
    curve = alpha_rows(scores, result)

    save_predictions(Path(args.predictions), scores)
    write_json(args.curve, [row.to_json() for row in curve])
    Path(args.figures).mkdir(parents=True, exist_ok=True)
    plot_robustness(metrics, curve, Path(args.figures))
    write_json(args.metrics, metrics.to_json())
    print(f"shift: {args.model or ''} on {shift} (of {of}), {metrics.num_images} images, "
          f"{len(metrics.classifiers)} classifiers, fit of {metrics.fit.count} probes: slope "
          f"{metrics.fit.slope.value:.3f}, intercept {metrics.fit.intercept.value:.3f}")
    for row in metrics.classifiers:
        if row.chosen or row.classifier in ("probe", "logreg"):
            print(f"  {row.name:32} source {row.source.value:.4f}  shift {row.shift.value:.4f}  drop "
                  f"{row.drop.value:+.4f}  ER {row.effective_robustness.value:+.4f}")
    for check in metrics.curves:
        print(f"  {check.curve}: best interior alpha {check.best_alpha:g} minus the better end "
              f"{check.difference.value:+.4f} [{check.difference.low:+.4f}, {check.difference.high:+.4f}]")


if __name__ == "__main__":
    run(main)
