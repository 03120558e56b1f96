"""Params section ``models``: the models compared, each by a short name (read by every per-model stage)."""

from __future__ import annotations

import re
from typing import Any

from clip_study.models.families import family_names
from clip_study.pipeline.keys import LocalPath, Section, named_entries_problems, one_of, text

# one entry of the models section
MODEL_KEYS = {
    "name": text("a checkpoint: hub id (e.g. 'openai/clip-vit-base-patch32') or a local directory",
                 doc="the checkpoint: a hub id or a local directory", path=LocalPath("folder", hub="model")),
    "family": one_of(*family_names(), default="auto",
                     doc="`auto` (from the checkpoint's config), `hf_clip`, `hf_siglip`"),
}
# a short name becomes part of DVC stage names (extract@NAME-dataset), a folder and the first part of metric keys
SHORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def models_problems(models: dict[Any, Any]) -> list[str]:
    """One line per bad entry of the models section."""
    return named_entries_problems("models", models, MODEL_KEYS, SHORT_NAME,
                                  "a letter then up to 39 letters, digits, '_' or '-', e.g. clip_b32",
                                  "clip_b32: {name: openai/clip-vit-base-patch32}")


MODELS = Section("models", "the models compared: short name -> {name, family}; each short name runs its own "
                           "stages (extract@<short name>-<dataset>, ...) and the leaderboard puts them side by side",
                 MODEL_KEYS, own_problems=models_problems, per_entry=True)
