"""The file of the demo's heldout stage: zero-shot top-1 on the classes seen in pretraining against the (colour,
shape) pairs held out of it."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class GroupTop1(Record):
    """Test top-1 on two groups of classes; the scores cover all classes."""

    seen_top1: float = meaning("test top-1 on the images of classes seen in pretraining")
    held_out_top1: float | None = meaning("test top-1 on the images of classes held out of pretraining; null "
                                          "when the dataset has none")


@dataclass(frozen=True, kw_only=True)
class HeldoutTemplate(Record):
    """One zero-shot classifier on the two groups."""

    template: str = meaning("the template, or 'ensemble <key>'")
    test: GroupTop1 = meaning("its top-1 per group", inline=True)


@dataclass(frozen=True, kw_only=True)
class HeldoutMetrics(Record):
    """Compositional zero-shot: classes seen in pretraining against classes held out of it."""

    num_classes: int = meaning("classes of the subset (count)")
    chance_top1: float = meaning("1 / num_classes: the top-1 of guessing")
    held_out_classes: list[str] = meaning("names of the classes held out of pretraining (empty: the dataset's class "
                                          "space has none, and templates is empty)")
    num_held_out_test_images: int = meaning("test images of the held-out classes (count)")
    templates: dict[str, HeldoutTemplate] = meaning("each zero-shot classifier of zeroshot.json, templates then "
                                                    "ensembles", keyed_by="classifier key")
    best: str = meaning("key of the classifier zeroshot chose: zeroshot.json's best")
    cosine: GroupTop1 = meaning("the chosen classifier, by cosine similarity")
    dot: GroupTop1 = meaning("the chosen classifier, by the raw dot product")


FILES = (MetricsFile(path="metrics/models/<model>/<dataset>/heldout.json", stage="heldout", record=HeldoutMetrics,
                     about="The offline demo only: zero-shot on classes seen in pretraining against classes held "
                           "out of it."),)
