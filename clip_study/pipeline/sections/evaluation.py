"""Params section ``evaluation``: how far to trust each number, intervals, validation split, calibration (read
by every stage that scores)."""

from __future__ import annotations

from clip_study.pipeline.keys import Section, fraction, whole

EVALUATION = Section("evaluation", "how far to trust each number: intervals, the validation split, calibration", {
    "val_fraction": fraction(doc="validation split carved from train: the probe's epoch, the probes' temperatures, "
                                 "the zero-shot mix"),
    "resamples": whole(100, doc="bootstrap resamples of the test images (stratified by class) per interval"),
    "confidence": fraction(doc="coverage of every interval"),
    "seed": whole(0, doc="the validation split and the bootstrap draws"),
    "calibration_bins": whole(2, doc="confidence bins of the ECE and the reliability diagram"),
})
