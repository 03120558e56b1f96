"""Params section ``model``: what every model of the ``models`` section shares (read by extract, zeroshot)."""

from __future__ import annotations

from clip_study.pipeline.keys import Section, one_of

MODEL = Section("model", "what every model of the models section shares", {
    "device": one_of("auto", "cpu", "cuda", "mps", default="auto", extra=" (or 'cuda:N')", pattern=r"cuda:\d+",
                     aliases={"gpu": "cuda"}, doc="`auto` (cuda, then mps, then cpu), `cpu`, `cuda` (or `cuda:N`), "
                                                  "`mps`"),
}, moved={"name": "the models compared are listed under 'models' now, each by a short name: write "
                  "'models: {{clip_b32: {{name: {value}}}}}' and keep model.device"})
