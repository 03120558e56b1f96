"""Stage zeroshot: classify the test images by cosine similarity to class embeddings built from prompt
templates, one template at a time and as ensembles. Only text is encoded here; image embeddings come
from extract. The templates are the dataset's ``templates`` file, else the dataset's own (``--own-templates``,
written by fetch: a webdataset's ``zeroshot_classification_templates.txt``), else ``zeroshot.templates``.

The classifier reported as the headline is chosen on the train images (zero-shot never learns from them,
so all of them are held-out data for it), never on test; the test-picked one is kept as the "oracle".
Every test score carries a bootstrap interval, every classifier is compared with the chosen one on the
same test images (McNemar), and the chosen one's probabilities (softmax over the classes of the model's
logits: logit scale x cosine, plus SigLIP's bias) are calibrated by a temperature fitted on the train images.
Every classifier is kept as a head (logit scale folded in), so shift sets are scored without encoding text again.
"""

from __future__ import annotations

from pathlib import Path

from clip_study.data.features import load_splits
from clip_study.data.subset import read_classes
from clip_study.errors import UserError
from clip_study.evaluation import zeroshot
from clip_study.evaluation.calibration import calibration_report
from clip_study.evaluation.heads import save_heads
from clip_study.evaluation.metrics import confusion_rows
from clip_study.evaluation.prompts import read_templates, template_keys
from clip_study.evaluation.similarity import similarity_scores
from clip_study.files import read_json, save_npz, write_json
from clip_study.metrics_files.scores import Calibration, ConfusionRow
from clip_study.metrics_files.zeroshot import EnsembleResult, IntervalSettings, TemplateResult, ZeroshotMetrics
from clip_study.models.loading import load_model, load_tokenizer, pick_device
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import for_param, load_params, model_entry, named_entry, section
from clip_study.pipeline.sections.datasets import DATASETS
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.model import MODEL
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.sections.zeroshot import ZEROSHOT
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "own_templates": REQUIRED, "features": REQUIRED, "out": REQUIRED,
                                "metrics": REQUIRED, "confusion": REQUIRED, "heads": REQUIRED},
                      argv, per_model=True, per_dataset=True)
    params = load_params(args.params, MODELS, DATASETS, MODEL, ZEROSHOT, EVALUATION)  # templates checked there
    short, checkpoint, family = model_entry(params, args.model)
    dataset, entry = named_entry(params, "datasets", args.dataset)
    model_params, settings = section(params, "model"), section(params, "zeroshot")
    own = read_json(args.own_templates, fix=rebuild("fetch"))["templates"]
    templates = template_keys(read_templates(entry["templates"], f"datasets.{dataset}.templates")
                              if entry["templates"] else own or settings["templates"])
    ensembles = {str(name): (read_templates(spec, f"zeroshot.ensembles.{name}"),
                             spec if isinstance(spec, str) else "inline")
                 for name, spec in (settings["ensembles"] or {}).items()}
    clash = sorted((set(templates) | ({"class_prompts"} if settings["class_prompts"] else set())) & set(ensembles))
    if clash:
        raise UserError(f"zeroshot.ensembles: {clash} is also the key of a template or of class_prompts, and "
                        "each names one result: rename the ensemble")

    classes = read_classes(args.subset, fix=rebuild("fetch"))
    names = [c["name"] for c in classes]
    (train_x, train_y), (test_x, test_y) = load_splits(args.features, rebuild("extract"), len(names))
    prompts_file, prompts = settings["class_prompts"], None
    if prompts_file:  # read before the model loads, as the template files are
        with for_param("zeroshot.class_prompts"):
            prompts = zeroshot.prompts_per_class(read_json(str(prompts_file)), classes)
    with for_param("model.device"):
        device = pick_device(str(model_params["device"]))
    with for_param(f"models.{short}.name"):
        model = load_model(checkpoint, device, family)
        tokenizer = load_tokenizer(checkpoint, model)

    weights, described = {}, {}  # key -> class weights; key -> what the classifier is
    encoded = zeroshot.encode_templates(model, tokenizer, list(templates.values()), names)
    for (key, template), class_features in zip(templates.items(), encoded):
        weights[key], described[key] = class_features, {"template": template}
    for name, (members, source) in ensembles.items():
        weights[name] = zeroshot.zero_shot_classifier(model, tokenizer, names, members)
        described[name] = {"num_templates": len(members), "source": source}
    if prompts is not None:
        weights["class_prompts"] = zeroshot.class_prompt_classifier(model, tokenizer, prompts, names)
        described["class_prompts"] = {"num_templates": None, "source": str(prompts_file)}

    bootstrap = bootstrap_settings(params)
    results, best, oracle, predictions = zeroshot.evaluate_choices(weights, (train_x, train_y), (test_x, test_y),
                                                                   bootstrap)
    for key, result in results.items():
        print(f"zeroshot: {result['top1']:.4f} top-1 [{result['top1_low']:.4f}, {result['top1_high']:.4f}]  "
              f"{described[key].get('template', f'ensemble {key}')!r}  (train images {result['choice_top1']:.4f})")
    head = zeroshot.zero_shot_head(model)  # zero-shot logits = logit scale x cosine (+ SigLIP's bias)
    evaluation = section(params, "evaluation")
    calibration = calibration_report(head.logits(similarity_scores(train_x, weights[best], "cosine")), train_y,
                                     head.logits(similarity_scores(test_x, weights[best], "cosine")), test_y,
                                     evaluation["calibration_bins"])

    save_npz(Path(args.out) / "text_features.npz", **weights)
    save_npz(Path(args.out) / "test_predictions.npz", labels=test_y, **predictions)
    save_heads(args.heads, zeroshot.zero_shot_heads(weights, head, best, predictions, test_y))
    confusion = [ConfusionRow(**row) for row in confusion_rows(test_y, predictions[best], names)]
    metrics = ZeroshotMetrics(
        num_classes=len(names), num_test_images=int(len(test_y)), chance_top1=round(1 / len(names), 6),
        model=short, logit_scale=round(head.scale, 6), logit_bias=round(head.bias, 6),
        model_probabilities=head.probabilities, chosen_on=f"{len(train_y)} train images",
        interval=IntervalSettings(confidence=bootstrap.confidence, resamples=bootstrap.resamples,
                                  stratified_by="class"),
        best=best, best_kind="template" if best in templates else "ensemble",
        best_template=templates.get(best, best), best_top1=results[best]["top1"],
        best_top1_low=results[best]["top1_low"], best_top1_high=results[best]["top1_high"],
        oracle=oracle, oracle_top1=results[oracle]["top1"],
        templates={key: TemplateResult.from_json({**described[key], **results[key]}) for key in templates},
        ensembles={key: EnsembleResult.from_json({**described[key], **results[key]}) for key in weights
                   if key not in templates},
        calibration=Calibration.from_json(calibration),
    )
    write_json(args.confusion, [row.to_json() for row in confusion])
    write_json(args.metrics, metrics.to_json())


if __name__ == "__main__":
    run(main)
