"""Params section ``retrieval``: how captions are prompted and which recall@k are reported (read by
embed_captions and retrieval)."""

from __future__ import annotations

from typing import Any

from clip_study.errors import UserError, shown
from clip_study.pipeline.keys import Key, Section, first_duplicate, is_integer, whole


def check_template(name: str, value: Any) -> None:
    """A template holds ``{}`` exactly once, where the caption goes."""
    if value is not None and value.count("{}") != 1:
        raise UserError(f"{name}: {shown(value)} must hold '{{}}' exactly once, where the caption goes (e.g. "
                        "'a photo of {}'), or be null for the captions as given")


def check_recall_at(name: str, value: list[Any]) -> None:
    """Each k a whole number >= 1, each once."""
    for k in value:
        if not is_integer(k, 1):
            raise UserError(f"{name}: {shown(k)} must be a whole number >= 1 (recall@k: a right result in the top k)")
    duplicate = first_duplicate(value)
    if duplicate is not None:
        raise UserError(f"{name}: {duplicate!r} is listed twice; list each k once")


RETRIEVAL = Section("retrieval", "retrieval on the caption datasets: the prompt around each caption and the k of "
                                 "recall@k", {
    "template": Key("null or a text with {} once, where the caption goes",
                    lambda v: v is None or (isinstance(v, str) and v.strip() != ""), check_template, default=None,
                    doc="text around each caption before it is encoded, `{}` where the caption goes (`null`: the "
                        "captions as given); a sweep: `dvc exp run -S 'retrieval.template=\"a photo of {}\"'`"),
    "recall_at": Key("a non-empty list of whole numbers, e.g. [1, 5, 10]",
                     lambda v: isinstance(v, list) and len(v) > 0, check_recall_at,
                     doc="the k of recall@k, reported both ways (open_clip and CLIP_benchmark: 1, 5, 10)"),
    "batch_size": whole(1, doc="captions per text-encoding batch"),
})
