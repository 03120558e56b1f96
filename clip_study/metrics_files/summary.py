"""The files of the summary stage: each model's bottom line (its DVC metrics file, numbers only) and the paired
tests of the probes against zero-shot."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning
from clip_study.metrics_files.scores import PairedTest, Top1Interval


@dataclass(frozen=True, kw_only=True)
class MacroF1(Record):
    """Test macro-F1 of the headline classifiers."""

    zeroshot_best: float = meaning("of the zero-shot classifier chosen on the train images")
    dot_product: float = meaning("of the same classifier by the raw dot product")
    probe: float = meaning("of the linear probe at its chosen epoch")
    logreg: float = meaning("of the logistic-regression probe")


@dataclass(frozen=True, kw_only=True)
class ExpectedCalibrationErrors(Record):
    """Test ECE of each classifier's probabilities, as predicted and after temperature scaling."""

    zeroshot: float = meaning("zero-shot, as predicted")
    zeroshot_scaled: float = meaning("zero-shot, temperature-scaled")
    probe: float = meaning("the linear probe, as predicted")
    probe_scaled: float = meaning("the linear probe, temperature-scaled")
    logreg: float = meaning("the logistic probe, as predicted")
    logreg_scaled: float = meaning("the logistic probe, temperature-scaled")


@dataclass(frozen=True, kw_only=True)
class PValues(Record):
    """McNemar p-values (paired.json's tests)."""

    dot_vs_cosine: float = meaning("the dot product against cosine")
    probe_vs_zeroshot: float = meaning("the linear probe against zero-shot")
    logreg_vs_zeroshot: float | None = meaning("the logistic probe against zero-shot", optional=True)


@dataclass(frozen=True, kw_only=True)
class SeenAndHeldOut(Record):
    """The demo's chosen zero-shot classifier on classes seen in pretraining and held out of it."""

    seen: float = meaning("test top-1 on the seen classes (heldout.json's cosine.seen_top1)")
    held_out: float = meaning("test top-1 on the held-out classes (heldout.json's cosine.held_out_top1)")


@dataclass(frozen=True, kw_only=True)
class Summary(Record):
    """The numbers a user compares across experiments (``dvc exp show``, ``dvc metrics diff``): each top-1 beside
    its interval. The zero-shot headline is the classifier chosen on the train images, the probe's the epoch
    chosen on validation; *_oracle are the test-picked ones (optimistic)."""

    zeroshot: dict[str, Top1Interval] = meaning("every zero-shot classifier, templates then ensembles",
                                                keyed_by="classifier key")
    zeroshot_best: Top1Interval = meaning("the zero-shot classifier chosen on the train images")
    zeroshot_oracle: float = meaning("the best test top-1 of any zero-shot classifier")
    dot_product: Top1Interval = meaning("the chosen classifier by the raw dot product")
    probe: Top1Interval = meaning("the linear probe at the epoch chosen on validation")
    probe_epoch: int = meaning("that epoch (1-based)")
    probe_final: float = meaning("the linear probe's test top-1 at its last epoch")
    probe_oracle: float = meaning("its best test top-1 at any epoch")
    probe_oracle_epoch: int = meaning("the epoch of probe_oracle (1-based)")
    logreg: Top1Interval = meaning("the logistic-regression probe")
    logreg_C: float = meaning("its C, chosen on validation (logreg.json's C)")
    fewshot: dict[str, Top1Interval] = meaning("the few-shot logistic probe: mean test top-1 over the runs",
                                               keyed_by="k or all")
    macro_f1: MacroF1 = meaning("test macro-F1")
    ece: ExpectedCalibrationErrors = meaning("test expected calibration error")
    p_value: PValues = meaning("McNemar p-values on the test images")
    probe_minus_zeroshot: float = meaning("the linear probe's test top-1 minus the chosen zero-shot classifier's")
    fewshot_overtakes_at_k: int | None = meaning("the fewest labelled images per class whose few-shot mean top-1 "
                                                 "beats zero-shot's (at the 'all' point: its k, every labelled "
                                                 "image of the largest class); null: never")
    zsinit: dict[str, Top1Interval] | None = meaning("the zero-shot-initialised head mixed with zero-shot: mean test "
                                                     "top-1 over the runs", optional=True, keyed_by="k or all")
    heldout: SeenAndHeldOut | None = meaning("the demo only: seen against held-out classes", optional=True)


@dataclass(frozen=True, kw_only=True)
class PairedMetrics(Record):
    """The probes and the dot product against zero-shot on the same test images (McNemar's exact test)."""

    num_test_images: int = meaning("test images compared (count)")
    probe_vs_zeroshot: PairedTest = meaning("the linear probe (A) against the chosen zero-shot classifier (B)")
    logreg_vs_zeroshot: PairedTest | None = meaning("the logistic probe (A) against the chosen zero-shot "
                                                    "classifier (B)", optional=True)
    dot_vs_cosine: PairedTest = meaning("the dot product (A) against cosine (B): similarity.json's dot.vs_cosine")


FILES = (
    MetricsFile(path="metrics/models/<model>/<dataset>/summary.json", stage="summary", record=Summary, layout="by model and dataset",
                about="The model's DVC metrics file: numbers only, under the model's short name so that keys from "
                      "several models never clash."),
    MetricsFile(path="metrics/models/<model>/<dataset>/paired.json", stage="summary", record=PairedMetrics,
                about="The probes and the dot product against zero-shot on the same test images."),
)
