"""Compositional zero-shot on the demo: top-1 on the classes seen in pretraining against the (colour,
shape) pairs held out of it, which the model never saw captioned."""

from __future__ import annotations

import numpy as np

from clip_study.evaluation.metrics import classification_metrics


def group_top1(labels: np.ndarray, scores: np.ndarray, group: np.ndarray) -> dict[str, float | None]:
    """top-1 over the images whose class is in ``group`` (True) and not (False); scores over all classes.
    No image in the group (no class held out): its top-1 is None."""
    in_group = np.isin(labels, np.flatnonzero(group))
    return {"seen_top1": classification_metrics(labels[~in_group], scores[~in_group])["top1"],
            "held_out_top1": classification_metrics(labels[in_group], scores[in_group])["top1"]
            if in_group.any() else None}
