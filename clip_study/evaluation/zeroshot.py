"""Zero-shot classifiers: class embeddings built from prompts, one template at a time, as CLIP's
ensemble of templates, or from prompts written per class."""

from __future__ import annotations

from typing import Any

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.prompts import class_prompts
from clip_study.evaluation.similarity import ensemble_weights
from clip_study.models.encoding import encode_texts


def encode_templates(model: Any, tokenizer: Any, templates: list[str], class_names: list[str]) -> np.ndarray:
    """(T, C, D) unnormalised text embeddings of every template x class name, in one batched pass."""
    prompts = [prompt for template in templates for prompt in class_prompts(template, class_names)]
    return encode_texts(model, tokenizer, prompts).reshape(len(templates), len(class_names), -1)


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
    return per_class


def class_prompt_classifier(model: Any, tokenizer: Any, prompts: list[list[str]]) -> np.ndarray:
    """(C, D) class weights from prompts written per class (an ensemble of each class's own prompts)."""
    return np.stack([ensemble_weights(encode_texts(model, tokenizer, p)[:, None, :])[0] for p in prompts])
