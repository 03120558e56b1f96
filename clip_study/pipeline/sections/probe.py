"""Params section ``probe``: the study's linear probe, Adam on frozen image features (read by probe)."""

from __future__ import annotations

from clip_study.pipeline.keys import Section, real, whole

PROBE = Section("probe", "the study's linear probe: Adam on frozen image features", {
    "epochs": whole(1, doc="training epochs; the epoch with the best validation top-1 is kept"),
    "lr": real(doc="Adam learning rate (the study: 1e-4, tuned for 512-dimensional ViT-B/32 features)"),
    "batch_size": whole(1, doc="images per step"),
    "weight_decay": real(positive=False, doc="Adam weight decay"),
    "seed": whole(0, doc="initialisation and shuffling"),
})

TRAINING_BUDGET = tuple(f"{PROBE.name}.{key}" for key in ("epochs", "lr"))
"""The keys that set how far the probe trains: what the summary and the report name when it stopped while still
improving."""
