"""The evaluation section of the params, as the library's settings (apart from ``params``, so that only the
stages that score depend on the interval code)."""

from __future__ import annotations

from typing import Any

from clip_study.evaluation.intervals import Bootstrap
from clip_study.pipeline.params import section


def bootstrap_settings(params: dict[str, Any]) -> Bootstrap:
    """The bootstrap of every interval, from the evaluation section (checked by ``load_params``)."""
    evaluation = section(params, "evaluation")
    return Bootstrap(resamples=evaluation["resamples"], seed=evaluation["seed"],
                     confidence=float(evaluation["confidence"]))
