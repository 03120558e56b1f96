"""Scores of images against class embeddings: cosine or the raw dot product, and CLIP's prompt ensemble.
numpy only, so that scoring needs no torch."""

from __future__ import annotations

import numpy as np


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


def ensemble_weights(embeddings: np.ndarray) -> np.ndarray:
    """CLIP's prompt ensemble: (T, C, D) embeddings of T prompts per class -> (C, D) class weights.

    Each prompt's embedding is L2-normalised, the T of a class are averaged, and the mean is
    renormalised, so no template counts more for having a longer text vector.
    """
    return l2_normalize(l2_normalize(embeddings).mean(axis=0))
