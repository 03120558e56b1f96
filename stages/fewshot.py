"""Stage fewshot: the paper's few-shot curve. The logistic probe trained on k random train images per
class (several seeds per k), then on all of them, each tested on the full test set. The summary stage
compares it with zero-shot (how many labelled images per class does the probe need to win?), so that a
prompt sweep never refits these probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages import data, logistic
from stages.config import UserError, load_params, parse_args, read_json, run, section, write_json
from stages.metrics import classification_metrics, spread


def shot_counts(params: dict[str, Any], k_all: int) -> list[int]:
    """The sorted distinct k of ``shots`` below ``k_all`` (an "all" entry is skipped: it is always added;
    load_params has checked that each k is a whole number >= 1)."""
    counts = {k for k in params["shots"] if k != "all"}
    if max(counts, default=0) >= k_all:
        print(f"fewshot: shots {sorted(k for k in counts if k >= k_all)} reach the {k_all} train images "
              "per class: they are the 'all' point")
    return sorted(k for k in counts if k < k_all)


def chosen_C(path: str) -> float:
    """The C the logreg stage picked by its validation sweep."""
    C = read_json(path).get("C")
    if isinstance(C, bool) or not isinstance(C, (int, float)) or C <= 0:
        raise UserError(f"{path}: 'C' is {C!r}, not a number > 0: rerun the logreg stage (dvc repro)")
    return float(C)


def curve_point(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                k: int, label: str, C: float, seeds: list[int]) -> dict[str, Any]:
    """Test top-1 over ``seeds`` runs of the probe on k images per class ("all": every train image, one run)."""
    num_classes = data.count_classes(train_y, test_y)
    top1 = []
    for seed in seeds:
        indices = np.arange(len(train_y)) if label == "all" else logistic.few_shot_indices(train_y, k, seed)
        model = logistic.fit_logistic(train_x[indices], train_y[indices], C, seed)
        top1.append(classification_metrics(test_y, logistic.decision_scores(model, test_x, num_classes))["top1"])
    stats = spread(np.array(top1))
    return {"k": k, "label": label, "runs": len(seeds),
            **{f"{name}_top1": stats[name] for name in ("mean", "std", "min", "max")}}


def main() -> None:
    args = parse_args(__doc__, {"features": "data/features", "logreg_metrics": "metrics/logreg.json",
                                "metrics": "metrics/fewshot.json", "curve": "metrics/fewshot_curve.json"})
    params = section(load_params(args.params), "fewshot")  # ranges checked by load_params
    seeds, seed = params["seeds"], params["seed"]
    train_x, train_y = data.load_features(Path(args.features) / "train.npz")
    test_x, test_y = data.load_features(Path(args.features) / "test.npz")
    k_all = int(np.bincount(train_y).max())
    shots = shot_counts(params, k_all)
    # The C the logreg stage chose on all of train, for every k: sweeping C again per k (on a validation
    # split of k images per class, too small to judge by) would cost 13x the fits.
    C = chosen_C(args.logreg_metrics)

    curve = []
    for k, label in [*((k, str(k)) for k in shots), (k_all, "all")]:
        runs = [seed] if label == "all" else [seed + s for s in range(seeds)]
        curve.append(curve_point(train_x, train_y, test_x, test_y, k, label, C, runs))
        print(f"fewshot: k={label}  {len(runs)} run(s)  test top-1 {curve[-1]['mean_top1']:.4f} "
              f"± {curve[-1]['std_top1']:.4f}")

    write_json(args.curve, [{key: row[key] for key in ("k", "mean_top1", "min_top1", "max_top1")} for row in curve])
    write_json(args.metrics, {"num_classes": data.count_classes(train_y, test_y), "C": C, "curve": curve})


if __name__ == "__main__":
    run(main)
