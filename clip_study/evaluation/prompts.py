"""Prompt templates: checking them, readable keys for them, filling in class names, and the template
files CLIP ships (its 80 ImageNet templates and their 7-template subset)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clip_study.errors import UserError, shown
from clip_study.files import read_text

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CLIP_TEMPLATES = ASSETS / "clip_imagenet_templates.txt"      # CLIP's 80 ImageNet templates
CLIP_TEMPLATES_7 = ASSETS / "clip_imagenet_templates_7.txt"  # the 7 of them that do a little better
TEMPLATE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # metric keys stay readable paths in `dvc metrics diff`


def check_templates(templates: Any, name: str = "templates") -> None:
    """Raise a UserError unless ``templates`` is a non-empty list of templates, or a mapping key: template,
    each holding one '{}' (where the class name goes) and given once; mapping keys become metric keys, so
    they stay plain words. ``name`` is what the messages call the templates."""
    if not isinstance(templates, (list, dict)) or not templates:
        raise UserError(f"{name}: {shown(templates)} must be a non-empty list of templates with one '{{}}' "
                        "each, or a mapping key: template")
    pairs = templates.items() if isinstance(templates, dict) else [(None, t) for t in templates]
    seen: dict[str, str] = {}
    for key, template in pairs:
        where = name if key is None else f"{name}.{key}"
        if key is not None and not TEMPLATE_KEY.fullmatch(str(key)):
            raise UserError(f"{name}: key {str(key)!r} may only use letters, digits, '_' and '-'")
        if not isinstance(template, str) or template.count("{}") != 1:
            raise UserError(f"{where}: {shown(template)} must contain '{{}}' exactly once, "
                            "where the class name goes (e.g. 'a photo of a {}')")
        if template in seen:
            raise UserError(f"{where}: {shown(template)} is given twice{seen[template]}; keep one")
        seen[template] = "" if key is None else f" (also {name}.{key})"


def template_keys(templates: list[str] | dict[str, str]) -> dict[str, str]:
    """Readable metric keys for prompt templates: ``{"a_photo_of_a": "a photo of a {}", ...}``.

    Raw templates are full of dots and braces, which make unreadable metric paths in
    ``dvc metrics diff``; a mapping keeps the caller's own keys.
    """
    check_templates(templates)
    if isinstance(templates, dict):
        return {str(key): template for key, template in templates.items()}
    keyed = {}
    for template in templates:
        key = template_key(str(template))
        keyed[key if key not in keyed else f"{key}_{len(keyed)}"] = template
    return keyed


def template_key(template: str, max_words: int = 5) -> str:
    """'a photo of a {}' -> 'a_photo_of_a'; '{}' -> 'label_only'; long ones keep their first words."""
    words = re.findall(r"[a-z0-9]+", template.replace("{}", " ").lower())
    if not words:
        return "label_only"
    return "_".join(words[:max_words]) + ("_etc" if len(words) > max_words else "")


def class_prompts(template: str, names: list[str]) -> list[str]:
    """The template filled with each class name (literal replace: other braces stay as written)."""
    return [template.replace("{}", name) for name in names]


def read_templates(spec: str | Path | list[str], name: str = "templates") -> list[str]:
    """An ensemble's templates, checked: an inline list, or a text file with one template a line."""
    where, members = name, spec
    if isinstance(spec, (str, Path)):
        try:
            text = read_text(spec)
        except UserError as error:
            raise UserError(f"{name}: {error}") from error
        members = [line.strip() for line in text.splitlines() if line.strip()]
        if not members:
            raise UserError(f"{name}: file {spec} holds no templates: write one template a line")
        where = f"{name} ({spec})"
    if not isinstance(members, list) or not members:
        raise UserError(f"{name}: {shown(spec)} must be a template file (one template a line) "
                        "or a non-empty list of templates")
    check_templates(members, where)
    return [str(template) for template in members]
