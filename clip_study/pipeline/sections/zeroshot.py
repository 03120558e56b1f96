"""Params section ``zeroshot``: the prompts zero-shot classification is scored under (read by zeroshot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clip_study.evaluation.prompts import check_templates, read_templates
from clip_study.pipeline.keys import Key, LocalPath, Section, existing_file

MOVED_ASSETS = "stages/assets/"  # where the shipped template files were before clip_study/assets/


def check_ensembles(name: str, ensembles: dict[Any, Any] | None) -> None:
    """Each ensemble's templates, inline or in a file (one that is not there: the check stage says so)."""
    for ensemble, spec in (ensembles or {}).items():
        if not isinstance(spec, str) or Path(spec).is_file():
            read_templates(spec, f"{name}.{ensemble}")


def template_file_fix(path: str) -> str:
    """What to do about a template file that is not there (one named by the path it had before the move to
    clip_study/assets/: the new one)."""
    if path.startswith(MOVED_ASSETS):
        return ("the shipped template files moved to clip_study/assets/; write "
                f"clip_study/assets/{path[len(MOVED_ASSETS):]}")
    return "correct the path, or list the templates inline"


ZEROSHOT = Section("zeroshot", "the prompts zero-shot classification is scored under", {
    "templates": Key("a non-empty list of templates with one '{}' each, or a mapping key: template",
                     lambda v: True, lambda name, value: check_templates(value, name),
                     doc="a list of templates with one `{}` each (metric keys derived from the words: "
                         "`a photo of a {}` -> `a_photo_of_a`, `{}` -> `label_only`), or a mapping `key: template`"),
    "ensembles": Key("a mapping name: template file or list of templates (or null)",
                     lambda v: v is None or isinstance(v, dict), check_ensembles, default=None,
                     path=LocalPath("file", each=True, fix=template_file_fix),
                     doc="name: a template file (one a line) or an inline list; per class each template's "
                         "embedding is L2-normalised, averaged and renormalised (CLIP's ensemble); CLIP's 80 "
                         "ImageNet templates and its 7-template subset ship in `clip_study/assets/`"),
    "class_prompts": existing_file("a JSON file {class id or name: [prompt, ...]}",
                                   doc="a JSON file `{class id or name: [prompt, ...]}`, scored as one more "
                                       "ensemble, `class_prompts`"),
})
