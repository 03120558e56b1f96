"""The file of the report stage: each class's test accuracy per classifier, for DVC's bar plot."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class PerClassRow(Record):
    """One class: its recall (right / its test images) for each classifier of scores.CLASSIFIERS, from the
    confusion files; null for a classifier whose confusion file is missing."""

    class_name: str = meaning("the class name", key="class")
    zeroshot: float | None = meaning("the chosen zero-shot classifier's recall of the class (6 decimals)")
    probe: float | None = meaning("the linear probe's recall of the class (6 decimals)")
    logreg: float | None = meaning("the logistic probe's recall of the class (6 decimals)")

    def recall(self, classifier: str) -> float | None:
        """The recall of a classifier by its key (one of scores.CLASSIFIERS)."""
        return {"zeroshot": self.zeroshot, "probe": self.probe, "logreg": self.logreg}[classifier]


FILES = (MetricsFile(path="metrics/models/<model>/<dataset>/per_class.json", stage="report", record=PerClassRow,
                     layout="rows", about="Each class's test recall per classifier, sorted by class name."),)
