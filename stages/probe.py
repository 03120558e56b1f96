"""Stage probe: a linear classifier (one nn.Linear, Adam) on the frozen train image embeddings,
tested after every epoch on the same test images as zero-shot."""

from __future__ import annotations

from clip_study.data.features import count_classes, load_splits
from clip_study.data.subset import read_classes
from clip_study.evaluation.linear_probe import train_linear_probe
from clip_study.evaluation.metrics import classification_metrics, confusion_rows
from clip_study.files import write_json
from clip_study.pipeline.params import load_params, section
from clip_study.pipeline.stage import parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "features": "data/features", "metrics": "metrics/probe.json",
                                "curve": "metrics/probe_curve.json", "confusion": "metrics/confusion_probe.json"}, argv)
    params = section(load_params(args.params), "probe")  # ranges checked by load_params
    names = [c["name"] for c in read_classes(args.subset, fix=rebuild("fetch"))]
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"), len(names))
    num_classes = count_classes(train_y, test_y)

    curve, scores = [], None
    for epoch, loss, scores in train_linear_probe(
            train_x, train_y, test_x, num_classes, epochs=params["epochs"], lr=float(params["lr"]),
            batch_size=params["batch_size"], weight_decay=float(params["weight_decay"]), seed=params["seed"]):
        curve.append({"epoch": epoch, "train_loss": round(loss, 6), **classification_metrics(test_y, scores)})
        print(f"probe: epoch {epoch}  loss {loss:.4f}  test top-1 {curve[-1]['top1']:.4f}")

    best = max(curve, key=lambda row: row["top1"])
    final = curve[-1]
    write_json(args.curve, curve)
    write_json(args.confusion, confusion_rows(test_y, scores.argmax(axis=1), names))
    write_json(args.metrics, {
        "num_classes": num_classes, "num_train_images": int(len(train_y)), "num_test_images": int(len(test_y)),
        "epochs": len(curve), "top1": final["top1"], "top5": final["top5"], "macro_f1": final["macro_f1"],
        "best_epoch": best["epoch"], "best_top1": best["top1"], "best_macro_f1": best["macro_f1"],
    })


if __name__ == "__main__":
    run(main)
