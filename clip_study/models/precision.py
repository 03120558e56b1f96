"""The precisions image encoding runs in, and what ``auto`` means on each device.

Kept free of torch imports: the params schema lists the precisions, and stages that only score
embeddings must start without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clip_study.errors import UserError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "int8", "fp16", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is fp16 on cuda and fp32 elsewhere (bf16 measured slower than fp32 on CPUs
    without AMX); int8 is dynamic quantisation, which torch runs on the cpu only."""
    if precision not in PRECISIONS:
        raise UserError(f"{precision!r} must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "int8" and device.type != "cpu":
        raise UserError(f"'int8' runs on the cpu only, not {device.type}; use fp16 or bf16 there, "
                        "or encode on the cpu")
    return precision
