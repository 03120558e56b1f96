"""Linear heads on frozen image features, kept where they were fitted so other data can be scored with them.

Every classifier of the study is a linear map of an image's features to class logits: zero-shot (the class text
embeddings times the model's logit scale), the probe, the logistic probe, the few-shot heads, the zero-shot
initialised head and their mixes. A fitting stage writes its heads to one heads file, with their predictions on
the source's test images, so that a shift set is scored by applying them, never by fitting again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clip_study.errors import BadFileError, UserError, shown
from clip_study.evaluation.similarity import l2_normalize
from clip_study.files import load_npz, save_npz


@dataclass(frozen=True)
class LinearHead:
    """logits = f(x) @ weights.T + bias, f L2-normalising the features when ``normalize`` (CLIP's zero-shot
    and probes) or the identity (the study's probe, trained on raw features). Any logit scale is folded
    into the weights, so two heads on the same f give logits on the same scale."""

    weights: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    normalize: bool

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = l2_normalize(features) if self.normalize else features
        return x @ self.weights.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.logits(features).argmax(axis=1).astype(np.int64)


def mix(zero_shot: LinearHead, fitted: LinearHead, alpha: float) -> LinearHead:
    """WiSE-FT's weight-space ensemble (1 - alpha) * zero_shot + alpha * fitted, weights and bias alike. Both
    heads must read L2-normalised features with the logit scale folded in (as WiSE-FT scales the zero-shot head
    by CLIP's temperature before mixing), else the mix would weigh one head by its scale, not by alpha."""
    if not (zero_shot.normalize and fitted.normalize):
        raise UserError("mix: both heads must score L2-normalised features (normalize=True) to be mixed")
    if zero_shot.weights.shape != fitted.weights.shape:
        raise UserError(f"mix: heads of shapes {zero_shot.weights.shape} and {fitted.weights.shape} cannot be mixed: "
                        "they must score the same classes from the same features")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise UserError(f"mix: alpha = {shown(alpha)} must be a number from 0 (zero-shot) to 1 (the fitted head)")
    return LinearHead((1 - alpha) * zero_shot.weights + alpha * fitted.weights,
                      (1 - alpha) * zero_shot.bias + alpha * fitted.bias, True)


def best_alpha(val_top1: Mapping[float, float]) -> tuple[float, float]:
    """The mixing weight with the best validation top-1 (alpha -> top-1), and that top-1. On a tie the smaller
    alpha: the head closer to zero-shot, which the training images had less chance to overfit."""
    alpha = min(val_top1, key=lambda a: (-val_top1[a], a))
    return alpha, val_top1[alpha]


@dataclass(frozen=True)
class Heads:
    """What a fitting stage leaves behind: its heads, what each is (``info``, JSON: at least ``name``, unique,
    and ``classifier``), their predictions on the source's test images (H, N) and those images' labels (N,).
    ``validation``: indices into the source's train split that the heads did not train on (the split a mixing
    weight may be chosen on), when the stage carved one."""

    heads: list[LinearHead]
    info: list[dict[str, Any]]
    predictions: np.ndarray
    labels: np.ndarray
    validation: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        names = [entry["name"] for entry in self.info]
        if len(self.heads) != len(self.info) or len(set(names)) != len(names):
            raise ValueError(f"Heads: {len(self.heads)} heads, {len(self.info)} infos, names {names}: one unique "
                             "name per head")
        if np.shape(self.predictions) != (len(self.heads), len(self.labels)):
            raise ValueError(f"Heads: predictions of shape {np.shape(self.predictions)}, not "
                             f"({len(self.heads)}, {len(self.labels)})")

    def named(self, name: str) -> tuple[LinearHead, dict[str, Any], np.ndarray]:
        """The head called ``name``, its info and its source test predictions."""
        index = [entry["name"] for entry in self.info].index(name)
        return self.heads[index], self.info[index], self.predictions[index]

    def where(self, **wanted: Any) -> list[int]:
        """Indices of the heads whose info has every key = value of ``wanted``."""
        return [i for i, entry in enumerate(self.info) if all(entry.get(k) == v for k, v in wanted.items())]


def save_heads(path: Path, heads: Heads) -> None:
    """One npz: stacked weights (H, C, D), bias (H, C), normalize (H,), the predictions and labels, and the
    infos as one JSON text (no pickle)."""
    arrays = {"weights": np.stack([h.weights for h in heads.heads]).astype(np.float32),
              "bias": np.stack([h.bias for h in heads.heads]).astype(np.float32),
              "normalize": np.array([h.normalize for h in heads.heads], dtype=bool),
              "predictions": np.asarray(heads.predictions, dtype=np.int64),
              "labels": np.asarray(heads.labels, dtype=np.int64),
              "info": np.frombuffer(json.dumps(heads.info, sort_keys=True).encode(), dtype=np.uint8)}
    if heads.validation is not None:
        arrays["validation"] = np.asarray(heads.validation, dtype=np.int64)
    save_npz(Path(path), **arrays)


def load_heads(path: str | Path, fix: str | None = None) -> Heads:
    """A heads file written by ``save_heads``; a damaged one is a BadFileError naming ``fix``."""
    arrays = load_npz(path, fix)
    weights, bias, normalize = arrays["weights"], arrays["bias"], arrays["normalize"]
    try:
        info = json.loads(arrays["info"].astype(np.uint8).tobytes().decode())
        if weights.ndim != 3 or bias.shape != weights.shape[:2] or normalize.shape != weights.shape[:1]:
            raise ValueError(f"weights {weights.shape}, bias {bias.shape} and normalize {normalize.shape} disagree")
        return Heads([LinearHead(w, b, bool(n)) for w, b, n in zip(weights, bias, normalize)], info,
                     arrays["predictions"], arrays["labels"],
                     arrays["validation"] if "validation" in arrays else None)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise BadFileError(path, f"is not a heads file ({error})", fix or "write it again") from error
