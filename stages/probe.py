"""Stage probe: a linear classifier (one nn.Linear, Adam) on the frozen train image embeddings,
tested after every epoch on the same test images as zero-shot."""

from __future__ import annotations

from pathlib import Path

from stages import classify, data
from stages.config import UserError, load_params, parse_args, run, section, write_json
from stages.metrics import classification_metrics


def positive(params: dict, key: str, kind: type) -> float | int:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or kind(value) != value:
        raise UserError(f"probe.{key}: {value!r} must be a positive {kind.__name__}")
    return kind(value)


def main() -> None:
    args = parse_args(__doc__, {"features": "data/features", "metrics": "metrics/probe.json",
                                "curve": "metrics/probe_curve.json"})
    params = section(load_params(args.params), "probe")
    train_x, train_y = data.load_features(Path(args.features) / "train.npz")
    test_x, test_y = data.load_features(Path(args.features) / "test.npz")
    num_classes = int(max(train_y.max(), test_y.max()) + 1)

    curve = []
    for epoch, loss, scores in classify.train_linear_probe(
            train_x, train_y, test_x, num_classes, epochs=positive(params, "epochs", int),
            lr=positive(params, "lr", float), batch_size=positive(params, "batch_size", int),
            weight_decay=float(params.get("weight_decay", 0.0)), seed=int(params.get("seed", 0))):
        curve.append({"epoch": epoch, "train_loss": round(loss, 6), **classification_metrics(test_y, scores)})
        print(f"probe: epoch {epoch}  loss {loss:.4f}  test top-1 {curve[-1]['top1']:.4f}")

    best = max(curve, key=lambda row: row["top1"])
    final = curve[-1]
    write_json(args.curve, curve)
    write_json(args.metrics, {
        "num_classes": num_classes, "num_train_images": int(len(train_y)), "num_test_images": int(len(test_y)),
        "epochs": len(curve), "top1": final["top1"], "top5": final["top5"], "macro_f1": final["macro_f1"],
        "best_epoch": best["epoch"], "best_top1": best["top1"], "best_macro_f1": best["macro_f1"],
    })


if __name__ == "__main__":
    run(main)
