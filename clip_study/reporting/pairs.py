"""The metrics files of one (model, dataset) pair that the readers across pairs read: the leaderboard and the
results table (metrics/results.csv). Each pair's files are in metrics/models/<model>/<dataset>/."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from clip_study.metrics_files import extract, fewshot, logreg, probe, similarity, zeroshot, zsinit
from clip_study.metrics_files.extract import ExtractMetrics
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.similarity import SimilarityMetrics
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.metrics_files.zsinit import ZsinitMetrics

DEFINED = {file.name: file for module in (extract, zeroshot, similarity, probe, logreg, fewshot, zsinit)
           for file in module.FILES}
OPTIONAL = ("zsinit",)
"""The files a pair may lack (a pipeline without the zsinit stage)."""


@dataclass(frozen=True)
class PairMetrics:
    """One model's metrics files on one dataset, by file name (None: an optional file is missing)."""

    extract: ExtractMetrics
    zeroshot: ZeroshotMetrics
    similarity: SimilarityMetrics
    probe: ProbeMetrics
    logreg: LogregMetrics
    fewshot: FewshotMetrics
    zsinit: ZsinitMetrics | None


def read_pair(folder: Path, fix: Callable[[str], str] | None = None) -> PairMetrics:
    """The files of ``folder`` (metrics/models/<model>/<dataset>); ``fix(stage)`` says how to write again a
    damaged or missing file that ``stage`` writes."""
    def read(name: str) -> Any:
        path = folder / f"{name}.json"
        if name in OPTIONAL and not path.exists():
            return None
        return DEFINED[name].read(path, fix=fix(DEFINED[name].stage) if fix else None)

    return PairMetrics(**{field.name: read(field.name) for field in fields(PairMetrics)})
