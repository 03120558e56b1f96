"""Stage zeroshot: classify the test images by cosine similarity to class embeddings built from prompt
templates, one template at a time and as ensembles. Only text is encoded here; image embeddings come
from extract."""

from __future__ import annotations

from pathlib import Path

from clip_study.data.features import load_features
from clip_study.data.subset import read_classes
from clip_study.errors import UserError
from clip_study.evaluation import zeroshot
from clip_study.evaluation.metrics import classification_metrics, confusion_rows
from clip_study.evaluation.prompts import template_keys
from clip_study.evaluation.similarity import similarity_scores
from clip_study.files import read_json, save_npz, write_json
from clip_study.models.loading import load_model, load_tokenizer, pick_device
from clip_study.pipeline.params import for_param, load_params, section
from clip_study.pipeline.schema import ensemble_members
from clip_study.pipeline.stage import parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "features": "data/features", "out": "data/zeroshot",
                                "metrics": "metrics/zeroshot.json", "confusion": "metrics/confusion_zeroshot.json"},
                      argv)
    params = load_params(args.params)  # templates and ensembles checked there
    model_params, settings = section(params, "model"), section(params, "zeroshot")
    templates = template_keys(settings["templates"])
    ensembles = {str(name): (ensemble_members(f"zeroshot.ensembles.{name}", spec),
                             spec if isinstance(spec, str) else "inline")
                 for name, spec in (settings.get("ensembles") or {}).items()}
    clash = sorted((set(templates) | ({"class_prompts"} if settings.get("class_prompts") else set())) & set(ensembles))
    if clash:
        raise UserError(f"zeroshot.ensembles: {clash} is also the key of a template or of class_prompts, and "
                        "each names one result: rename the ensemble")

    classes = read_classes(args.subset, fix=rebuild("fetch"))
    names = [c["name"] for c in classes]
    image_features, labels = load_features(Path(args.features) / "test.npz", rebuild("extract"), len(names))
    with for_param("model.device"):
        device = pick_device(str(model_params.get("device", "auto")))
    with for_param("model.name"):
        model = load_model(str(model_params["name"]), device)
        tokenizer = load_tokenizer(str(model_params["name"]), model)

    text_features, results = {}, {}
    encoded = zeroshot.encode_templates(model, tokenizer, list(templates.values()), names)
    for (key, template), class_features in zip(templates.items(), encoded):
        text_features[key] = class_features
        scores = similarity_scores(image_features, class_features, "cosine")
        results[key] = {"template": template, **classification_metrics(labels, scores)}
        print(f"zeroshot: {results[key]['top1']:.4f} top-1  {template!r}")

    ensemble_results = {}  # name -> (class weights, number of templates, where they came from)
    weights = {name: (zeroshot.zero_shot_classifier(model, tokenizer, names, members), len(members), source)
               for name, (members, source) in ensembles.items()}
    if settings.get("class_prompts"):
        path = str(settings["class_prompts"])
        with for_param("zeroshot.class_prompts"):
            prompts = zeroshot.prompts_per_class(read_json(path), classes)
        weights["class_prompts"] = (zeroshot.class_prompt_classifier(model, tokenizer, prompts, names), None, path)
    for name, (class_weights, count, source) in weights.items():
        text_features[name] = class_weights
        scores = similarity_scores(image_features, class_weights, "cosine")
        ensemble_results[name] = {"num_templates": count, "source": source, **classification_metrics(labels, scores)}
        print(f"zeroshot: {ensemble_results[name]['top1']:.4f} top-1  ensemble {name} ({source})")

    save_npz(Path(args.out) / "text_features.npz", **text_features)
    best = max(results, key=lambda key: results[key]["top1"])
    predictions = similarity_scores(image_features, text_features[best], "cosine").argmax(axis=1)
    write_json(args.confusion, confusion_rows(labels, predictions, names))
    write_json(args.metrics, {
        "num_classes": len(names), "num_test_images": int(len(labels)), "chance_top1": round(1 / len(names), 6),
        "logit_scale": round(float(model.logit_scale.exp()), 6),  # zero-shot logits = logit_scale x cosine
        "best": best, "best_template": templates[best], "best_top1": results[best]["top1"],
        "templates": results, "ensembles": ensemble_results,
    })


if __name__ == "__main__":
    run(main)
