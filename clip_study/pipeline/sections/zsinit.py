"""Params section ``zsinit``: the zero-shot-initialised head (read by zsinit, with fewshot's k and seeds and
evaluation's validation split)."""

from __future__ import annotations

from clip_study.pipeline.keys import Section, real, whole

ZSINIT = Section("zsinit", "a linear head that starts as the zero-shot classifier, trained on k images per class", {
    "steps": whole(1, doc="full-batch Adam steps from the zero-shot weights"),
    "lr": real(doc="Adam learning rate"),
    "weight_decay": real(positive=False, doc="strength of an L2 pull of the weights toward the zero-shot weights "
                                              "they start from (not toward 0)"),
    "alpha_steps": whole(2, doc="mixing weights tried on validation, evenly from 0 (zero-shot) to 1 (the trained "
                                "head)"),
})
