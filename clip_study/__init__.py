"""clip_study: how CLIP classifies images, from a notebook or as the DVC pipeline in ``stages/``.

    from clip_study import load_clip, encode_images, zero_shot_classifier, similarity_scores, classification_metrics

The folders say where each concern lives: ``data`` (image sources, decoding, the subset format, feature
files), ``models`` (loading, precision, preprocessing, encoding), ``evaluation`` (prompts, zero-shot, probes,
metrics), ``reporting`` (summary, report, figures), ``demo`` (the offline demo's shapes and small CLIP) and
``pipeline`` (the params layer the stages share).

The names below are imported on first use, so that a stage which only scores embeddings never pays for
importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "UserError": "clip_study.errors",
    "load_clip": "clip_study.models.loading",
    "load_model": "clip_study.models.loading",
    "load_tokenizer": "clip_study.models.loading",
    "load_image_processor": "clip_study.models.loading",
    "pick_device": "clip_study.models.loading",
    "encode_images": "clip_study.models.encoding",
    "encode_texts": "clip_study.models.encoding",
    "CLIP_TEMPLATES": "clip_study.evaluation.prompts",
    "CLIP_TEMPLATES_7": "clip_study.evaluation.prompts",
    "read_templates": "clip_study.evaluation.prompts",
    "template_keys": "clip_study.evaluation.prompts",
    "zero_shot_classifier": "clip_study.evaluation.zeroshot",
    "similarity_scores": "clip_study.evaluation.similarity",
    "classification_metrics": "clip_study.evaluation.metrics",
    "read_split": "clip_study.data.subset",
    "read_classes": "clip_study.data.subset",
    "load_features": "clip_study.data.features",
    "load_results": "clip_study.reporting.results_table",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'clip_study' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
