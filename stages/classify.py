"""Classifiers on CLIP embeddings: zero-shot by prompt similarity, and a linear probe."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from stages import schema


def template_keys(templates: list[str] | dict[str, str]) -> dict[str, str]:
    """Readable metric keys for prompt templates: ``{"a_photo_of_a": "a photo of a {}", ...}``.

    Raw templates are full of dots and braces, which make unreadable metric paths in
    ``dvc metrics diff``; a mapping in params keeps the user's own keys. The templates are checked
    by the params schema (one '{}' each, no repeats), here too for callers outside a stage.
    """
    schema.check_value("zeroshot.templates", schema.TEMPLATES, templates)
    if isinstance(templates, dict):
        return {str(key): template for key, template in templates.items()}
    keyed = {}
    for template in templates:
        key = template_key(str(template))
        keyed[key if key not in keyed else f"{key}_{len(keyed)}"] = template
    return keyed


def template_key(template: str, max_words: int = 5) -> str:
    """'a photo of a {}' -> 'a_photo_of_a'; '{}' -> 'label_only'; long ones keep their first words."""
    words = re.findall(r"[a-z0-9]+", template.replace("{}", " ").lower())
    if not words:
        return "label_only"
    return "_".join(words[:max_words]) + ("_etc" if len(words) > max_words else "")


def class_prompts(template: str, names: list[str]) -> list[str]:
    """The template filled with each class name (literal replace: other braces stay as written)."""
    return [template.replace("{}", name) for name in names]


def ensemble_templates(spec: str | list[str], name: str) -> list[str]:
    """An ensemble's templates: an inline list, or a text file with one template a line."""
    return schema.ensemble_members(f"zeroshot.ensembles.{name}", spec)


def ensemble_weights(embeddings: np.ndarray) -> np.ndarray:
    """CLIP's prompt ensemble: (T, C, D) embeddings of T prompts per class -> (C, D) class weights.

    Each prompt's embedding is L2-normalised, the T of a class are averaged, and the mean is
    renormalised, so no template counts more for having a longer text vector.
    """
    return l2_normalize(l2_normalize(embeddings).mean(axis=0))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


def similarity_scores(image_features: np.ndarray, text_features: np.ndarray,
                      metric: str = "cosine") -> np.ndarray:
    """(N, C) scores of N images against C class embeddings: cosine, or the raw dot product."""
    if metric == "cosine":
        image_features, text_features = l2_normalize(image_features), l2_normalize(text_features)
    elif metric != "dot":
        raise ValueError(f"unknown similarity metric {metric!r}")
    return image_features @ text_features.T


def train_linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int,
                       epochs: int, lr: float, batch_size: int, weight_decay: float,
                       seed: int) -> Iterator[tuple[int, float, np.ndarray]]:
    """Train one ``nn.Linear`` with Adam on frozen features (the study's probe).

    Yields ``(epoch, mean train loss, test scores)`` after each epoch, so callers can log a curve.
    Seeded initialisation and shuffling make it deterministic on CPU.
    """
    import torch  # imported here: the stages that only score embeddings need no torch (~2 s to import)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 64 x 512: syncing threads costs more than it saves (8 s vs 1.5 s)
    try:
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = torch.nn.Linear(train_x.shape[1], num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        x, y = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
        test = torch.from_numpy(test_x).float()
        for epoch in range(1, epochs + 1):
            model.train()
            total = 0.0
            for batch in torch.randperm(len(x), generator=generator).split(batch_size):
                loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            model.eval()
            with torch.inference_mode():
                yield epoch, total / len(x), model(test).numpy()
    finally:
        torch.set_num_threads(threads)
