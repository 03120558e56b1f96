"""The schema of the params files: every section, every key a stage reads, and what each may hold.

``params.load_params`` checks a whole params file against it (``params.yaml`` and ``demo/params.yaml``
share one schema), so any stage refuses a misspelt key or an out-of-range value before it loads a
model or a dataset, with one line naming the key, the value and what is allowed. Stages then read
values without checking their ranges again. Checks that need the data (more classes requested than
the dataset has, a patch size that does not divide the images) stay in the stages. Optional keys
may be absent: the stage that reads one applies its default.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from clip_study.errors import UserError, shown
from clip_study.evaluation.prompts import check_templates, read_templates
from clip_study.models.families import family_names
from clip_study.models.precision import PRECISIONS

Check = Callable[[str, Any], None]  # (dotted key, value) -> None, or raises UserError
DEMO_HELD_OUT_MAX = 7  # the demo holds out at most one (colour, shape) pair per colour and shape: 7 of each
MOVED_ASSETS = "stages/assets/"  # where the shipped template files were before clip_study/assets/


@dataclass(frozen=True)
class Key:
    """One param: what it may hold (``accepts``, in words ``allowed``), a deeper ``check`` with its own
    messages (run once ``accepts`` passed), and whether it may be absent."""

    allowed: str
    accepts: Callable[[Any], bool]
    check: Check | None = None
    required: bool = True


def is_integer(value: Any, minimum: int = 1, maximum: int | None = None) -> bool:
    """A whole number in [minimum, maximum]; a bool or a float (e.g. 6.5e2) is refused, not truncated."""
    return (not isinstance(value, bool) and isinstance(value, int) and value >= minimum
            and (maximum is None or value <= maximum))


def integer_range(minimum: int = 1, maximum: int | None = None) -> str:
    """What ``is_integer`` accepts, in words for error messages."""
    return f"a whole number >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")


def is_number(value: Any, positive: bool = True) -> bool:
    """A finite number > 0 (or >= 0 with ``positive=False``); a bool, nan or inf is refused."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and (value > 0 if positive else value >= 0))


def number_range(positive: bool = True) -> str:
    """What ``is_number`` accepts, in words for error messages."""
    return f"a finite number {'> 0' if positive else '>= 0'}"


def near_miss(word: str, choices: list[str]) -> str | None:
    """The one of ``choices`` that ``word`` is most likely a misspelling of (case-insensitive), if any."""
    lowered = {choice.lower(): choice for choice in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


# -- building blocks ----------------------------------------------------------------------------------

def whole(minimum: int = 1, maximum: int | None = None, required: bool = True) -> Key:
    return Key(integer_range(minimum, maximum), lambda v: is_integer(v, minimum, maximum), required=required)


def real(positive: bool = True) -> Key:
    return Key(number_range(positive), lambda v: is_number(v, positive))


def fraction() -> Key:
    return Key("a fraction between 0 and 1 (e.g. 0.2)", lambda v: is_number(v) and v < 1)


def text(allowed: str, required: bool = True) -> Key:
    return Key(allowed, lambda v: isinstance(v, str) and v.strip() != "", required=required)


def auto_or_whole(minimum: int) -> Key:
    return Key(f"'auto' or {integer_range(minimum)}", lambda v: v == "auto" or is_integer(v, minimum), required=False)


def one_of(*choices: str, extra: str = "", pattern: str | None = None, aliases: dict[str, str] | None = None) -> Key:
    """One of ``choices`` (or a match of ``pattern``, described by ``extra``), with a did-you-mean for
    a near-miss or a known alias (difflib alone would answer 'cpu' to 'gpu')."""
    allowed = "one of " + ", ".join(repr(choice) for choice in choices) + extra

    def check(name: str, value: Any) -> None:
        if value in choices or (pattern and isinstance(value, str) and re.fullmatch(pattern, value)):
            return
        match = None
        if isinstance(value, str):
            match = (aliases or {}).get(value.lower()) or near_miss(value, list(choices))
        raise UserError(f"{name}: {shown(value)} must be {allowed}" + (f"; did you mean {match!r}?" if match else ""))

    return Key(allowed, lambda v: True, check, required=False)


def existing_file(what: str) -> Key:
    """Optional path of a file the user supplies (null: none), which must exist from the start."""
    def check(name: str, value: Any) -> None:
        if value is not None and not Path(value).is_file():
            raise UserError(f"{name}: file {value} not found: give {what} or null")

    return Key(f"null or the path of {what}", lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
               check, required=False)


def as_number_hint(value: Any) -> str:
    """'; YAML read it as text: write 0.0001' for a number that YAML kept as a string: PyYAML reads
    1e-4 (no dot) as text, and a quoted "0.2" is text too."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
            except ValueError:
                continue
            return f"; YAML read it as text: write {number!r}" if math.isfinite(number) else ""
    return ""


def first_duplicate(values: list[Any]) -> Any | None:
    """The first entry of ``values`` that came before (a repeated class or template is a slip)."""
    seen: list[Any] = []
    for value in values:
        if value in seen:
            return value
        seen.append(value)
    return None


# -- checks of one key ---------------------------------------------------------------------------------

def check_classes(name: str, value: Any) -> None:
    """A class list names each class once, and at least two: zero-shot needs a choice."""
    if isinstance(value, list):
        duplicate = first_duplicate(value)
        if duplicate is not None:
            raise UserError(f"{name}: {duplicate!r} is listed twice; list each class once")
        if len(value) < 2:
            raise UserError(f"{name}: {shown(value)} lists {len(value)} class(es); list at least 2")


def ensemble_members(name: str, spec: Any) -> list[str]:
    """An ensemble's templates, checked (a file written by the path it had before the move gets the new one)."""
    if isinstance(spec, str) and spec.startswith(MOVED_ASSETS) and not Path(spec).is_file():
        raise UserError(f"{name}: file {spec} not found: the shipped template files moved to clip_study/assets/; "
                        f"write clip_study/assets/{spec[len(MOVED_ASSETS):]}")
    return read_templates(spec, name)


def check_ensembles(name: str, ensembles: dict[Any, Any] | None) -> None:
    for ensemble, spec in (ensembles or {}).items():
        ensemble_members(f"{name}.{ensemble}", spec)


def check_shots(name: str, shots: list[Any]) -> None:
    """Each k a whole number of images per class (or 'all', always added anyway), each once."""
    for k in shots:
        if k != "all" and not is_integer(k, 1):
            raise UserError(f"{name}: {shown(k)} must be a whole number of images per class >= 1 (or 'all')")
    duplicate = first_duplicate(shots)
    if duplicate is not None:
        raise UserError(f"{name}: {duplicate!r} is listed twice; list each k once")


# -- checks across keys of one section (run once each key is valid) --------------------------------

def check_logreg(values: dict[str, Any]) -> None:
    if values["C_min"] > values["C_max"]:
        raise UserError(f"logreg.C_min: {values['C_min']:g} must be <= logreg.C_max ({values['C_max']:g}); "
                        "swap them")


def check_pretrain(values: dict[str, Any]) -> None:
    for key in ("vision_hidden", "text_hidden"):
        if values[key] % values["heads"]:
            raise UserError(f"pretrain.{key}: {values[key]} must be divisible by pretrain.heads ({values['heads']})")


CLASSES = Key("'all', a number of classes >= 2, or a list of class ids or names (quoted strings)",
              lambda v: v is None or v == "all" or is_integer(v, 2)
              or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
              check_classes, required=False)
TEMPLATES = Key("a non-empty list of templates with one '{}' each, or a mapping key: template",
                lambda v: True, lambda name, value: check_templates(value, name))
ENSEMBLES = Key("a mapping name: template file or list of templates (or null)",
                lambda v: v is None or isinstance(v, dict), check_ensembles, required=False)
SHOTS = Key("a non-empty list of images per class, e.g. [1, 2, 4, 8, 16]",
            lambda v: isinstance(v, list) and len(v) > 0, check_shots)

# Every section and key, in params-file order. The stage reading each is in dvc.yaml / demo/dvc.yaml.
SECTIONS: dict[str, dict[str, Key]] = {
    "data": {
        "dataset": text("a hub dataset id (e.g. 'zh-plus/tiny-imagenet') or a local folder"),
        "split": text("a split name of the hub dataset (e.g. 'valid')", required=False),  # default train
        "classes": CLASSES,  # default all
        "max_per_class": Key(f"null (all images) or {integer_range(2)}", lambda v: v is None or is_integer(v, 2),
                             required=False),
        "test_size": fraction(),
        "seed": whole(0),
        "class_names": existing_file("a tsv of 'id<TAB>name' lines"),
        "on_bad_image": one_of("skip", "fail"),  # default skip
    },
    "models": {},  # short name -> MODEL_KEYS, checked by models_problems
    "model": {  # what every model shares
        "device": one_of("auto", "cpu", "cuda", "mps", extra=" (or 'cuda:N')", pattern=r"cuda:\d+",
                          aliases={"gpu": "cuda"}),  # default auto
    },
    "extract": {
        "batch_size": whole(1),
        "workers": auto_or_whole(0),  # default auto, as threads and precision
        "threads": auto_or_whole(1),
        "precision": one_of(*PRECISIONS),
        "shard_size": whole(1, required=False),  # default 4096
        "engine": one_of("local", "ray"),  # default local
        "ray_address": one_of("local", "auto", extra=" or a cluster address ('host:port', 'ray://host:port')",
                              pattern=r"(ray://)?[^\s:/]+:\d{1,5}"),  # default local
        "ray_actors": auto_or_whole(1),  # default auto: one per GPU of the cluster, else one
    },
    "zeroshot": {
        "templates": TEMPLATES,
        "ensembles": ENSEMBLES,
        "class_prompts": existing_file("a JSON file {class id or name: [prompt, ...]}"),
    },
    "probe": {
        "epochs": whole(1), "lr": real(), "batch_size": whole(1), "weight_decay": real(positive=False),
        "seed": whole(0),
    },
    "logreg": {
        "C_min": real(), "C_max": real(), "C_steps": whole(1), "val_fraction": fraction(), "seed": whole(0),
    },
    "fewshot": {
        "shots": SHOTS, "seeds": whole(1), "seed": whole(0),
    },
    "zsinit": {  # the zero-shot-initialised head; its k and seeds are fewshot's, its validation split evaluation's
        "steps": whole(1), "lr": real(), "weight_decay": real(positive=False), "alpha_steps": whole(2),
    },
    "evaluation": {
        "val_fraction": fraction(), "resamples": whole(100), "confidence": fraction(), "seed": whole(0),
        "calibration_bins": whole(2),
    },
    "generate": {  # demo only
        "seed": whole(0), "pretrain_images": whole(1), "eval_per_class": whole(2), "image_size": whole(8),
        "held_out": whole(0, DEMO_HELD_OUT_MAX),
    },
    "pretrain": {  # demo only
        "seed": whole(0), "steps": whole(1), "batch_size": whole(2), "lr": real(), "warmup_steps": whole(0),
        "weight_decay": real(positive=False), "vocab_size": whole(2), "vision_hidden": whole(1),
        "vision_layers": whole(1), "patch_size": whole(1), "text_hidden": whole(1), "text_layers": whole(1),
        "heads": whole(1), "projection_dim": whole(1), "max_text_length": whole(1),
    },
}
CROSS_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"logreg": check_logreg, "pretrain": check_pretrain}

# one entry of the models section
MODEL_KEYS = {
    "name": text("a checkpoint: hub id (e.g. 'openai/clip-vit-base-patch32') or a local directory"),
    "family": one_of(*family_names()),  # default auto
}
# a short name becomes a DVC stage suffix (extract@NAME), a folder and the first part of metric keys
SHORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
MODEL_MOVED = ("the models compared are listed under 'models' now, each by a short name: write "
               "'models: {{clip_b32: {{name: {name}}}}}' and keep model.device")


# -- the whole file -------------------------------------------------------------------------------------

def check_value(name: str, key: Key, value: Any) -> None:
    """Raise the UserError for ``value`` of param ``name`` (e.g. 'probe.lr') if ``key`` refuses it."""
    if not key.accepts(value):
        raise UserError(f"{name}: {shown(value)} must be {key.allowed}{as_number_hint(value)}")
    if key.check is not None:
        key.check(name, value)


def unknown_key_hint(section: str, key: str, keys: dict[str, Key] | None = None) -> str:
    """'; did you mean probe.epochs?' for a near-miss, else the sections where ``key`` belongs, if any."""
    match = near_miss(key, list(keys if keys is not None else SECTIONS[section]))
    if match:
        return f"; did you mean {section}.{match}?"
    elsewhere = [f"{other}.{key}" for other, keys in SECTIONS.items() if key in keys]
    return f"; did you mean {' or '.join(elsewhere)}?" if elsewhere else ""


def keys_problems(section: str, values: dict[Any, Any], keys: dict[str, Key]) -> list[str]:
    """One line per unknown, invalid or missing key of ``values`` (named ``section.key``), in file order."""
    found = []
    for key, value in values.items():
        name = f"{section}.{key}"
        if str(key) not in keys:
            found.append(f"{name}: unknown key{unknown_key_hint(section, str(key), keys)} "
                         f"({section} takes {', '.join(keys)})")
            continue
        try:
            check_value(name, keys[str(key)], value)
        except UserError as error:
            found.append(str(error))
    return found + [f"{section}.{key}: missing; add {rule.allowed}"
                    for key, rule in keys.items() if rule.required and key not in values]


def section_problems(section: str, values: dict[Any, Any]) -> list[str]:
    """One line per unknown, invalid or missing key of a section, in file order."""
    if section == "models":
        return models_problems(values)
    if section == "model" and "name" in values:  # the single-model form of before
        return [f"model.name: {MODEL_MOVED.format(name=values['name'])}"]
    found = keys_problems(section, values, SECTIONS[section])
    if not found and section in CROSS_CHECKS:
        try:
            CROSS_CHECKS[section](values)
        except UserError as error:
            found.append(str(error))
    return found


def models_problems(models: dict[Any, Any]) -> list[str]:
    """One line per bad entry of the models section: a short name that DVC, folders and metric keys can
    carry, and a mapping of MODEL_KEYS."""
    if not models:
        return ["models: empty; list at least one model, e.g. 'clip_b32: {name: openai/clip-vit-base-patch32}'"]
    found = []
    for short, entry in models.items():
        name = f"models.{short}"
        if not isinstance(short, str) or not SHORT_NAME.fullmatch(short):
            found.append(f"{name}: the short name must be a letter then up to 39 letters, digits, '_' or '-' "
                         "(it names stages, folders and metric keys), e.g. clip_b32")
        elif not isinstance(entry, dict):
            found.append(f"{name}: {shown(entry)} must be a mapping: {{name: <checkpoint>, family: auto}}")
        else:
            found += keys_problems(name, entry, MODEL_KEYS)
    return found


def problems(params: dict[Any, Any]) -> list[str]:
    """Every problem of a params file, one line each, in file order (empty: the file is valid).

    A section may be absent (the stage that needs it says so); a section that is there is checked
    whole, whichever stage reads the file.
    """
    found = []
    for section, values in params.items():
        section = str(section)
        if section not in SECTIONS:
            match = near_miss(section, list(SECTIONS))
            found.append(f"{section}: unknown section" + (f"; did you mean {match}?" if match else "")
                         + f" (sections: {', '.join(SECTIONS)})")
        elif not isinstance(values, dict):
            found.append(f"{section}: {shown(values)} must be a mapping of its keys "
                         f"({', '.join(SECTIONS[section])})")
        else:
            found += section_problems(section, values)
    return found
