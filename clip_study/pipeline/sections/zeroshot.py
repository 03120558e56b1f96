"""Params section ``zeroshot``: the prompts zero-shot classification is scored under (read by zeroshot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clip_study.errors import UserError
from clip_study.evaluation.prompts import check_templates, read_templates
from clip_study.pipeline.keys import Key, Section, existing_file

MOVED_ASSETS = "stages/assets/"  # where the shipped template files were before clip_study/assets/


def ensemble_members(name: str, spec: Any) -> list[str]:
    """An ensemble's templates, checked (a file written by the path it had before the move gets the new one)."""
    if isinstance(spec, str) and spec.startswith(MOVED_ASSETS) and not Path(spec).is_file():
        raise UserError(f"{name}: file {spec} not found: the shipped template files moved to clip_study/assets/; "
                        f"write clip_study/assets/{spec[len(MOVED_ASSETS):]}")
    return read_templates(spec, name)


def check_ensembles(name: str, ensembles: dict[Any, Any] | None) -> None:
    for ensemble, spec in (ensembles or {}).items():
        ensemble_members(f"{name}.{ensemble}", spec)


ZEROSHOT = Section("zeroshot", "the prompts zero-shot classification is scored under", {
    "templates": Key("a non-empty list of templates with one '{}' each, or a mapping key: template",
                     lambda v: True, lambda name, value: check_templates(value, name),
                     doc="a list of templates with one `{}` each (metric keys derived from the words: "
                         "`a photo of a {}` -> `a_photo_of_a`, `{}` -> `label_only`), or a mapping `key: template`"),
    "ensembles": Key("a mapping name: template file or list of templates (or null)",
                     lambda v: v is None or isinstance(v, dict), check_ensembles, default=None,
                     doc="name: a template file (one a line) or an inline list; per class each template's "
                         "embedding is L2-normalised, averaged and renormalised (CLIP's ensemble); CLIP's 80 "
                         "ImageNet templates and its 7-template subset ship in `clip_study/assets/`"),
    "class_prompts": existing_file("a JSON file {class id or name: [prompt, ...]}",
                                   doc="a JSON file `{class id or name: [prompt, ...]}`, scored as one more "
                                       "ensemble, `class_prompts`"),
})
