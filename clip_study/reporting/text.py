"""How the reports write a score with its bootstrap interval, in one place so that the summary table, a model's
report and the leaderboard read alike."""

from __future__ import annotations

from typing import Protocol


class WithTop1Interval(Protocol):
    """A record holding a test top-1 and its bootstrap interval (scores.Scores or scores.Top1Interval)."""

    top1: float
    top1_low: float
    top1_high: float


def interval_text(point: float, low: float, high: float) -> str:
    """'0.9204 [0.9051, 0.9347]': a score with its bootstrap interval, 4 decimals."""
    return f"{point:.4f} [{low:.4f}, {high:.4f}]"


def top1_text(result: WithTop1Interval) -> str:
    """A test top-1 with its interval, as ``interval_text`` writes it."""
    return interval_text(result.top1, result.top1_low, result.top1_high)


def points(value: float, signed: bool = False) -> str:
    """A fraction in points (percent of the images or queries), one decimal, no '-0.0'."""
    rounded = round(100 * value, 1) + 0.0
    return f"{rounded:+.1f}" if signed else f"{rounded:.1f}"


def p_text(p_value: float, resamples: int) -> str:
    """A bootstrap p-value as the front page writes it: its smallest value, 2 / (resamples + 1), is a bound, not an
    estimate."""
    smallest = 2 / (resamples + 1)
    return f"p ≤ {smallest:.3f}" if p_value <= smallest + 1e-9 else f"p = {p_value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines, a blank line after it (the front page's tables)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]
