"""What the reports conclude from the numbers, in one place so that the summary table and a model's report say
it alike: where the few-shot probe overtakes zero-shot, and whether a probe below zero-shot was still improving
when it stopped."""

from __future__ import annotations

from collections.abc import Sequence

from clip_study.evaluation.metrics import overtaking_k
from clip_study.metrics_files.fewshot import CurvePoint, FewshotMetrics
from clip_study.metrics_files.probe import ProbeMetrics


def overtaking_point(fewshot: FewshotMetrics, zeroshot_top1: float) -> CurvePoint | None:
    """The first point of the few-shot curve whose mean top-1 beats zero-shot's (None: no point does)."""
    k = overtaking_k([(point.shots.k, point.test.mean_top1) for point in fewshot.curve], zeroshot_top1)
    return next((point for point in fewshot.curve if point.shots.k == k), None)


def overtakes_at(point: CurvePoint, num_classes: int, train_images: int) -> str:
    """Where the few-shot probe overtakes zero-shot, in words: "at 16 labelled images per class (784 in all)".

    At the curve's "all" point, which trains on every labelled image, "only with all 80 labelled images per
    class (3920 in all)": its k is no number of labels one chose to collect, but all there were. ``train_images``
    is every labelled training image; when the classes differ in size, "all" is said with the largest class's
    count as "up to"."""
    k = point.shots.k
    if point.shots.label != "all":
        return f"at {k} labelled images per class ({k * num_classes} in all)"
    per_class = f"all {k} labelled images per class" if k * num_classes == train_images else \
        f"all labelled images (up to {k} per class)"
    return f"only with {per_class} ({train_images} in all)"


BUDGET_IN_WORDS = ("its epochs", "its learning rate")
"""The probe's training budget as a library caller reads it; a stage names its params keys instead."""


def still_improving(probe: ProbeMetrics, zeroshot_top1: float, budget: Sequence[str] = BUDGET_IN_WORDS) -> str | None:
    """One sentence when the linear probe ends below zero-shot while still improving, naming ``budget`` (what
    sets how far it trains), else None.

    Still improving: the epoch chosen on validation (the first with the best validation top-1) is the last of
    two or more, so validation top-1 was higher at the last epoch than at any before it. Then the gap to
    zero-shot may be the probe's training budget, not the features: the study's settings suit CLIP ViT-B/32's
    512-d features over many images, and a small model's may need more."""
    last = probe.epochs
    if last < 2 or probe.chosen_epoch != last or probe.test.top1 >= zeroshot_top1:
        return None
    return (f"The probe ends below zero-shot while still improving: its validation top-1 is highest at its last "
            f"epoch ({last} of {last}), so it stopped before converging and the gap may be its training budget "
            f"rather than the features; raise {' or '.join(budget)} and rerun.")
