"""What every figure of the reports shares: matplotlib without a display, the colours, error bars from bootstrap
intervals, and PNG files that are the same bytes for the same data."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from clip_study.reporting.text import WithTop1Interval  # noqa: E402

BLUE, ORANGE, GREEN, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def save(fig, figures: Path, name: str) -> None:
    fig.tight_layout()
    fig.savefig(figures / f"{name}.png", dpi=100, metadata={"Software": None})  # no version: same bytes
    plt.close(fig)


def interval_spans(results: list[WithTop1Interval]) -> np.ndarray:
    """(2, N) distances from each top-1 down to ``top1_low`` and up to ``top1_high`` (error bars); 0 where a
    percentile interval does not reach its point value, which a skewed resample distribution allows."""
    return np.maximum(np.array([[r.top1 - r.top1_low, r.top1_high - r.top1] for r in results]).T, 0)
