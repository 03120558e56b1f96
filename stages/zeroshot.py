"""Stage zeroshot: classify the test images by cosine similarity to each prompt template's class
embeddings. Only text is encoded here; image embeddings come from extract."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages import classify, clip, data
from stages.config import load_params, parse_args, run, section, write_json
from stages.metrics import classification_metrics


def main() -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "features": "data/features",
                                "out": "data/zeroshot", "metrics": "metrics/zeroshot.json"})
    params = load_params(args.params)
    model_params = section(params, "model")
    templates = classify.template_keys(section(params, "zeroshot").get("templates"))

    names = [c["name"] for c in data.read_classes(args.subset)]
    image_features, labels = data.load_features(Path(args.features) / "test.npz")
    model = clip.load_model(str(model_params["name"]), clip.pick_device(str(model_params.get("device", "auto"))))
    tokenizer = clip.load_tokenizer(str(model_params["name"]))

    text_features, results = {}, {}
    for key, template in templates.items():
        text_features[key] = clip.encode_texts(model, tokenizer, classify.class_prompts(template, names))
        scores = classify.similarity_scores(image_features, text_features[key], "cosine")
        results[key] = {"template": template, **classification_metrics(labels, scores)}
        print(f"zeroshot: {results[key]['top1']:.4f} top-1  {template!r}")

    Path(args.out).mkdir(parents=True, exist_ok=True)
    np.savez(Path(args.out) / "text_features.npz", **text_features)
    best = max(results, key=lambda key: results[key]["top1"])
    write_json(args.metrics, {
        "num_classes": len(names), "num_test_images": int(len(labels)), "chance_top1": round(1 / len(names), 6),
        "best": best, "best_template": templates[best], "best_top1": results[best]["top1"],
        "templates": results,
    })


if __name__ == "__main__":
    run(main)
