"""What the reports conclude from the numbers, in one place so that the summary table and a model's report say
it alike: where the few-shot probe overtakes zero-shot."""

from __future__ import annotations

from clip_study.evaluation.metrics import overtaking_k
from clip_study.metrics_files.fewshot import CurvePoint, FewshotMetrics


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
