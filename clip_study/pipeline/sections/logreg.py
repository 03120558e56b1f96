"""Params section ``logreg``: the CLIP paper's probe protocol, a logistic regression whose L2 strength is
swept on a validation split (read by logreg; fewshot uses the C it chose)."""

from __future__ import annotations

from typing import Any

from clip_study.errors import UserError
from clip_study.pipeline.keys import Section, fraction, real, whole


def check_c_range(values: dict[str, Any]) -> None:
    if values["C_min"] > values["C_max"]:
        raise UserError(f"logreg.C_min: {values['C_min']:g} must be <= logreg.C_max ({values['C_max']:g}); "
                        "swap them")


LOGREG = Section("logreg", "the CLIP paper's probe: logistic regression, L2 strength swept on validation", {
    "C_min": real(doc="smallest inverse L2 strength of the log-spaced sweep (features L2-normalised)"),
    "C_max": real(doc="largest inverse L2 strength of the sweep"),
    "C_steps": whole(1, doc="values of C tried: one fit each on train minus validation, then a refit with the best"),
    "val_fraction": fraction(doc="stratified validation split carved from train for the sweep"),
    "seed": whole(0, doc="the validation split"),
}, cross_check=check_c_range)
