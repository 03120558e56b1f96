"""The study's bottom line: zero-shot against the linear probes, each with its bootstrap interval, the paired
tests between them, calibration, and where the few-shot probe overtakes zero-shot. As numbers only (the one DVC
metrics file of a pipeline, what ``dvc exp show`` and ``dvc metrics diff`` compare: every top-1 sits beside its
``top1_low`` and ``top1_high``) and as a markdown table with the prompt and the labelled data each needs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clip_study.evaluation.intervals import compared
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.heldout import HeldoutMetrics
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.scores import PairedTest
from clip_study.metrics_files.similarity import SimilarityMetrics
from clip_study.metrics_files.summary import (ExpectedCalibrationErrors, MacroF1, PairedMetrics, PValues,
                                              SeenAndHeldOut, Summary)
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.metrics_files.zsinit import ZsinitMetrics
from clip_study.reporting.findings import BUDGET_IN_WORDS, overtakes_at, overtaking_point, still_improving
from clip_study.reporting.text import top1_text


def paired_tests(labels: np.ndarray, zeroshot: np.ndarray, probe: np.ndarray, logreg: np.ndarray | None,
                 dot_vs_cosine: PairedTest) -> PairedMetrics:
    """Each probe against zero-shot on the same test images (McNemar), from their test predictions, beside the
    similarity stage's dot product against cosine."""
    def against_zeroshot(predictions: np.ndarray) -> PairedTest:
        return PairedTest(**compared(predictions == labels, zeroshot == labels))

    return PairedMetrics(num_test_images=int(len(labels)), probe_vs_zeroshot=against_zeroshot(probe),
                         logreg_vs_zeroshot=None if logreg is None else against_zeroshot(logreg),
                         dot_vs_cosine=dot_vs_cosine)


def build_summary(zeroshot: ZeroshotMetrics, similarity: SimilarityMetrics, probe: ProbeMetrics,
                  logreg: LogregMetrics, fewshot: FewshotMetrics, paired: PairedMetrics,
                  heldout: HeldoutMetrics | None = None, zsinit: ZsinitMetrics | None = None) -> Summary:
    """The numbers a user compares across experiments, from the stages' files; counts and texts stay in
    those files. The zero-shot headline is the classifier chosen on train images, the probe's the epoch
    chosen on validation; ``*_oracle`` are the test-picked ones (optimistic)."""
    results = zeroshot.results()
    best, dot = results[zeroshot.best].test, similarity.dot.test
    overtaking = overtaking_point(fewshot, best.top1)
    return Summary(
        zeroshot={key: result.test.top1_interval() for key, result in results.items()},
        zeroshot_best=best.top1_interval(), zeroshot_oracle=zeroshot.oracle_top1,
        dot_product=dot.top1_interval(),
        probe=probe.test.top1_interval(), probe_epoch=probe.chosen_epoch, probe_final=probe.final.test.top1,
        probe_oracle=probe.oracle_top1, probe_oracle_epoch=probe.oracle_epoch,
        logreg=logreg.test.top1_interval(), logreg_C=logreg.C,
        fewshot={point.shots.label: point.test.mean_interval() for point in fewshot.curve},
        macro_f1=MacroF1(zeroshot_best=best.macro_f1, dot_product=dot.macro_f1, probe=probe.test.macro_f1,
                         logreg=logreg.test.macro_f1),
        ece=ExpectedCalibrationErrors(zeroshot=zeroshot.calibration.before.ece,
                                      zeroshot_scaled=zeroshot.calibration.after.ece,
                                      probe=probe.calibration.before.ece, probe_scaled=probe.calibration.after.ece,
                                      logreg=logreg.calibration.before.ece, logreg_scaled=logreg.calibration.after.ece),
        p_value=PValues(dot_vs_cosine=similarity.dot.vs_cosine.p_value,
                        probe_vs_zeroshot=paired.probe_vs_zeroshot.p_value,
                        logreg_vs_zeroshot=paired.logreg_vs_zeroshot.p_value if paired.logreg_vs_zeroshot else None),
        probe_minus_zeroshot=round(probe.test.top1 - best.top1, 6),
        fewshot_overtakes_at_k=overtaking.shots.k if overtaking else None,
        # the zero-shot-initialised probe, mixed with zero-shot on validation
        zsinit=None if zsinit is None else {point.shots.label: point.mix.mean_interval() for point in zsinit.curve},
        # the demo: the chosen classifier on classes seen in pretraining and held out of it
        heldout=None if heldout is None or not heldout.held_out_classes else SeenAndHeldOut(seen=heldout.cosine.seen_top1,
                                                            held_out=heldout.cosine.held_out_top1),
    )


def summary_table(summary: Summary, zeroshot: ZeroshotMetrics, similarity: SimilarityMetrics, probe: ProbeMetrics,
                  logreg: LogregMetrics, fewshot: FewshotMetrics, paired: PairedMetrics,
                  probe_budget: Sequence[str] = BUDGET_IN_WORDS) -> str:
    """The markdown table of ``summary`` with intervals, the paired verdicts against zero-shot, and the labelled
    data each classifier needs (read from the stages' files); ``probe_budget`` names what sets how far the probe
    trains, for when it stopped while still improving (``findings.still_improving``)."""
    best, dot = zeroshot.results()[zeroshot.best].test, similarity.dot
    labelled = "none (class names only)"
    chosen = f"`{zeroshot.best_template}` (chosen on {zeroshot.chosen_on})"
    images = f"{probe.num_train_images} labelled images"
    rows = [
        ("zero-shot, cosine", chosen, top1_text(best), best.macro_f1, "-", labelled),
        ("zero-shot, dot product", "same", top1_text(dot.test), dot.test.macro_f1, dot.vs_cosine.verdict
         + " (vs cosine)", labelled),
        (f"linear probe, epoch {probe.chosen_epoch} (chosen on {probe.chosen_on})", "-", top1_text(probe.test),
         probe.test.macro_f1, paired.probe_vs_zeroshot.verdict, images),
        (f"logistic regression, C={logreg.C:.3g}", "-", top1_text(logreg.test), logreg.test.macro_f1,
         paired.logreg_vs_zeroshot.verdict if paired.logreg_vs_zeroshot else "-", images),
    ]
    overtaking = overtaking_point(fewshot, best.top1)
    confidence = f"{zeroshot.interval.confidence:.0%}"
    lines = ["# CLIP study summary\n",
             f"{zeroshot.num_classes} classes (chance top-1 {1 / zeroshot.num_classes:.4f}), "
             f"{zeroshot.num_test_images} test images; top-1 with its {confidence} bootstrap interval.\n",
             "| classifier | prompt | top-1 [interval] | macro-F1 | vs zero-shot (McNemar) | labelled data needed |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |" for row in rows]
    lines.append(f"\nTest-picked (optimistic) oracles: zero-shot `{zeroshot.oracle}` {zeroshot.oracle_top1:.4f}, "
                 f"probe epoch {probe.oracle_epoch} {probe.oracle_top1:.4f}; the study's final epoch "
                 f"{probe.final.epoch}: {probe.final.test.top1:.4f}.")
    undertrained = still_improving(probe, best.top1, probe_budget)
    lines.append(f"The probe is {summary.probe_minus_zeroshot:+.4f} top-1 from zero-shot. "
                 + (f"{undertrained} " if undertrained else "")
                 + ("The few-shot logistic probe "
                    + (f"overtakes zero-shot {overtakes_at(overtaking, fewshot.num_classes, probe.num_train_images)}"
                       if overtaking else "never overtakes zero-shot") + ".\n"))
    return "\n".join(lines)
