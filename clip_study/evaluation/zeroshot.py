"""Zero-shot classifiers: class embeddings built from prompts, one template at a time, as CLIP's
ensemble of templates, or from prompts written per class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from clip_study.errors import UserError, shown
from clip_study.evaluation.calibration import softmax
from clip_study.evaluation.heads import Heads, LinearHead
from clip_study.evaluation.prompts import class_prompts
from clip_study.evaluation.intervals import Bootstrap, compared
from clip_study.evaluation.metrics import chosen_key, scored
from clip_study.evaluation.similarity import ensemble_weights, l2_normalize, similarity_scores
from clip_study.models.encoding import encode_texts
from clip_study.models.families import family_of


def encode_templates(model: Any, tokenizer: Any, templates: list[str], class_names: list[str]) -> np.ndarray:
    """(T, C, D) unnormalised text embeddings of every template x class name, in one batched pass."""
    prompts = [class_prompts(template, class_names) for template in templates]
    for template, group in zip(templates, prompts):
        check_distinct(model, tokenizer, [[prompt] for prompt in group], class_names, f"template {shown(template, 60)}")
    flat = [prompt for group in prompts for prompt in group]
    return encode_texts(model, tokenizer, flat).reshape(len(templates), len(class_names), -1)


def check_distinct(model: Any, tokenizer: Any, prompts: list[list[str]], class_names: list[str], label: str) -> None:
    """The prompts of different classes must reach the model as different tokens, or the classes get the same
    embedding and zero-shot picks among them blindly: a tokenizer that cannot tell the class names apart, or a
    template so long that the model's text positions cut the class names off. ``prompts``: each class's."""
    limit = model.config.text_config.max_position_embeddings
    seen: dict[tuple, str] = {}
    for texts, name in zip(prompts, class_names):
        tokens = tuple(tuple(ids) for ids in tokenizer(texts, truncation=True, max_length=limit)["input_ids"])
        if tokens in seen and seen[tokens] != name:
            raise UserError(f"{label}: the prompts of {seen[tokens]!r} and {name!r} reach the model as the same "
                            f"tokens: the model's {limit} text positions cut the class names off, or the tokenizer "
                            "cannot tell them apart; shorten the prompts or check the tokenizer")
        seen[tokens] = name


def zero_shot_classifier(model: Any, tokenizer: Any, class_names: list[str], templates: list[str]) -> np.ndarray:
    """(C, D) class weights from ``templates`` (each with one '{}'), L2-normalised: CLIP's prompt
    ensemble, or with one template its normalised embedding. Score images with ``similarity_scores``."""
    return ensemble_weights(encode_templates(model, tokenizer, templates, class_names))


def prompts_per_class(prompts: dict[str, list[str]], classes: list[dict[str, str]]) -> list[list[str]]:
    """Each class's prompts from a mapping keyed by class id or name."""
    per_class = [prompts.get(c["id"], prompts.get(c["name"])) for c in classes]
    missing = [c["name"] for c, p in zip(classes, per_class) if not p]
    if missing:
        raise UserError(f"no prompts for {missing[:5]}{' and more' if len(missing) > 5 else ''}: "
                        "give every class a list of prompts")
    for c, texts in zip(classes, per_class):
        if not isinstance(texts, list) or not all(isinstance(text, str) and text.strip() for text in texts):
            raise UserError(f"the prompts of {c['name']!r} are {shown(texts)}, not a list of texts: "
                            "write them as [\"a photo of ...\", ...]")
    return per_class


def class_prompt_classifier(model: Any, tokenizer: Any, prompts: list[list[str]],
                            class_names: list[str]) -> np.ndarray:
    """(C, D) class weights from prompts written per class (an ensemble of each class's own prompts)."""
    check_distinct(model, tokenizer, prompts, class_names, "per-class prompts")
    return np.stack([ensemble_weights(encode_texts(model, tokenizer, p)[:, None, :])[0] for p in prompts])


class Choices(NamedTuple):
    """Every zero-shot classifier evaluated: ``results`` per key, the ``chosen`` key, the test-picked
    ``oracle`` key, and each classifier's test ``predictions``."""

    results: dict[str, dict]
    chosen: str
    oracle: str
    predictions: dict[str, np.ndarray]


def evaluate_choices(class_weights: dict[str, np.ndarray], choice: tuple[np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray], bootstrap: Bootstrap) -> Choices:
    """Every zero-shot classifier (cosine with its class weights) scored on ``choice`` images (its top-1 there
    picks the classifier) and on the test images (metrics with intervals); then the chosen one (first highest
    choice top-1), the test-picked oracle (first highest test top-1, optimistic), and each classifier compared
    with the chosen one on the same test images (McNemar)."""
    (choice_x, choice_y), (test_x, test_y) = choice, test
    results, predictions = {}, {}
    for key, weights in class_weights.items():
        choice_top1 = float((similarity_scores(choice_x, weights, "cosine").argmax(axis=1) == choice_y).mean())
        test_scores = similarity_scores(test_x, weights, "cosine")
        results[key] = {"choice_top1": round(choice_top1, 6), **scored(test_y, test_scores, bootstrap)}
        predictions[key] = test_scores.argmax(axis=1).astype(np.int64)
    chosen = chosen_key({key: result["choice_top1"] for key, result in results.items()})
    oracle = max(results, key=lambda key: results[key]["top1"])
    for key in results:
        results[key]["vs_chosen"] = None if key == chosen else compared(predictions[key] == test_y,
                                                                        predictions[chosen] == test_y)
    return Choices(results, chosen, oracle, predictions)


@dataclass(frozen=True, kw_only=True)
class ZeroShotHead:
    """How a family turns cosine similarities into logits (``scale x cosine + bias``) and probabilities."""

    scale: float
    bias: float
    probabilities: str  # the family's: "softmax" over the classes or a "sigmoid" per class

    def logits(self, cosine: np.ndarray) -> np.ndarray:
        return self.scale * cosine + self.bias

    def probabilities_of(self, cosine: np.ndarray) -> np.ndarray:
        logits = self.logits(np.asarray(cosine, dtype=np.float64))
        return 1.0 / (1.0 + np.exp(-logits)) if self.probabilities == "sigmoid" else softmax(logits)


def zero_shot_head(model: Any) -> ZeroShotHead:
    """The model's learned logit scale (and SigLIP's bias) and its family's probability function."""
    bias = getattr(model, "logit_bias", None)
    return ZeroShotHead(scale=float(model.logit_scale.detach().exp()),
                        bias=0.0 if bias is None else float(bias.detach()), probabilities=family_of(model).probabilities)


def zero_shot_heads(class_weights: dict[str, np.ndarray], head: ZeroShotHead, chosen: str,
                    predictions: dict[str, np.ndarray], labels: np.ndarray) -> Heads:
    """Every zero-shot classifier as a saved head ("zeroshot/<key>", the chosen one marked): the L2-normalised
    class weights times the logit scale, the family's bias for every class, so its logits are the model's and it
    mixes with a fitted head by weight alone; with its test ``predictions``."""
    heads = [LinearHead(head.scale * l2_normalize(weights), np.full(len(weights), head.bias), True)
             for weights in class_weights.values()]
    info = [{"name": f"zeroshot/{key}", "classifier": "zeroshot", "key": key, "chosen": key == chosen}
            for key in class_weights]
    return Heads(heads, info, np.stack([predictions[key] for key in class_weights]), labels)
