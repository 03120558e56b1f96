"""Stage zeroshot: classify the test images by cosine similarity to class embeddings built from prompt
templates, one template at a time and as ensembles. Only text is encoded here; image embeddings come
from extract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages import classify, clip, data
from stages.config import UserError, load_params, parse_args, read_json, run, section, write_json
from stages.metrics import classification_metrics, confusion_rows


def encode_ensemble(model: Any, tokenizer: Any, templates: list[str], names: list[str]) -> np.ndarray:
    """(C, D) ensemble weights of ``templates`` x class ``names``, encoded in one batched pass."""
    prompts = [prompt for template in templates for prompt in classify.class_prompts(template, names)]
    embeddings = clip.encode_texts(model, tokenizer, prompts).reshape(len(templates), len(names), -1)
    return classify.ensemble_weights(embeddings)


def encode_class_prompts(model: Any, tokenizer: Any, path: str, classes: list[dict[str, str]]) -> np.ndarray:
    """(C, D) weights from per-class prompts: a JSON file {class id or name: [prompt, ...]}."""
    prompts = read_json(path)
    per_class = [prompts.get(c["id"], prompts.get(c["name"])) for c in classes]
    missing = [c["name"] for c, p in zip(classes, per_class) if not p]
    if missing:
        raise UserError(f"zeroshot.class_prompts: {path} has no prompts for {missing[:5]}"
                        f"{' and more' if len(missing) > 5 else ''}: give every class a list of prompts")
    return np.stack([classify.ensemble_weights(clip.encode_texts(model, tokenizer, p)[:, None, :])[0]
                     for p in per_class])


def main() -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "features": "data/features", "out": "data/zeroshot",
                                "metrics": "metrics/zeroshot.json", "confusion": "metrics/confusion_zeroshot.json"})
    params = load_params(args.params)
    model_params, zeroshot = section(params, "model"), section(params, "zeroshot")
    templates = classify.template_keys(zeroshot.get("templates"))
    ensembles = {str(name): (classify.ensemble_templates(spec, str(name)), spec if isinstance(spec, str) else "inline")
                 for name, spec in (zeroshot.get("ensembles") or {}).items()}

    taken = set(templates) | ({"class_prompts"} if zeroshot.get("class_prompts") else set())
    clash = sorted(taken & set(ensembles))
    if clash:
        raise UserError(f"zeroshot.ensembles: {clash} is also the key of a template or of class_prompts, and "
                        "each names one result: rename the ensemble")

    classes = data.read_classes(args.subset)
    names = [c["name"] for c in classes]
    image_features, labels = data.load_features(Path(args.features) / "test.npz")
    model = clip.load_model(str(model_params["name"]), clip.pick_device(str(model_params.get("device", "auto"))))
    tokenizer = clip.load_tokenizer(str(model_params["name"]))

    text_features, results = {}, {}
    prompts = [prompt for template in templates.values() for prompt in classify.class_prompts(template, names)]
    encoded = clip.encode_texts(model, tokenizer, prompts).reshape(len(templates), len(names), -1)
    for (key, template), class_features in zip(templates.items(), encoded):
        text_features[key] = class_features
        scores = classify.similarity_scores(image_features, class_features, "cosine")
        results[key] = {"template": template, **classification_metrics(labels, scores)}
        print(f"zeroshot: {results[key]['top1']:.4f} top-1  {template!r}")

    ensemble_results = {}  # name -> (class weights, number of templates, where they came from)
    ensemble_weights = {name: (encode_ensemble(model, tokenizer, members, names), len(members), source)
                        for name, (members, source) in ensembles.items()}
    if zeroshot.get("class_prompts"):
        path = str(zeroshot["class_prompts"])
        ensemble_weights["class_prompts"] = (encode_class_prompts(model, tokenizer, path, classes), None, path)
    for name, (weights, count, source) in ensemble_weights.items():
        text_features[name] = weights
        scores = classify.similarity_scores(image_features, weights, "cosine")
        ensemble_results[name] = {"num_templates": count, "source": source, **classification_metrics(labels, scores)}
        print(f"zeroshot: {ensemble_results[name]['top1']:.4f} top-1  ensemble {name} ({source})")

    Path(args.out).mkdir(parents=True, exist_ok=True)
    data.save_npz(Path(args.out) / "text_features.npz", **text_features)
    best = max(results, key=lambda key: results[key]["top1"])
    predictions = classify.similarity_scores(image_features, text_features[best], "cosine").argmax(axis=1)
    write_json(args.confusion, confusion_rows(labels, predictions, names))
    write_json(args.metrics, {
        "num_classes": len(names), "num_test_images": int(len(labels)), "chance_top1": round(1 / len(names), 6),
        "best": best, "best_template": templates[best], "best_top1": results[best]["top1"],
        "templates": results, "ensembles": ensemble_results,
    })


if __name__ == "__main__":
    run(main)
