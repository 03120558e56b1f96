"""A linear head initialised from the zero-shot classifier and trained on k images per class, then mixed back
with its zero-shot start (the weight-space interpolation of WiSE-FT).

A plain probe starts from nothing: with one or two images per class it has far less to go on than the class
names zero-shot reads, and falls well below it. This head starts AS zero-shot (the L2-normalised class text
embeddings as weights, no bias, CLIP's logit scale), so the few labels only have to correct it; and the
interpolation weight alpha between the start (alpha = 0: zero-shot itself) and the trained head (alpha = 1)
is chosen on a validation split, so a handful of noisy images cannot pull it far from zero-shot unless
validation says it helps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from clip_study.errors import UserError, shown
from clip_study.evaluation.fewshot import few_shot_indices
from clip_study.evaluation.heads import Heads, LinearHead, best_alpha
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.metrics import spread
from clip_study.evaluation.similarity import l2_normalize

Head = tuple[np.ndarray, np.ndarray]  # (C, D) weights, (C,) bias


@dataclass(frozen=True, kw_only=True)
class HeadTraining:
    """How the head is trained and mixed: full-batch Adam ``steps`` at ``lr``, an L2 pull of strength
    ``weight_decay`` toward the zero-shot weights, and the ``alphas`` tried on validation. Keyword-only:
    ``lr`` and ``weight_decay`` are both small floats, easy to swap by position."""

    steps: int
    lr: float
    weight_decay: float
    alphas: tuple[float, ...]


def alpha_grid(steps: int) -> tuple[float, ...]:
    """``steps`` evenly spaced alphas from 0 (zero-shot) to 1 (the trained head), e.g. 11: 0, 0.1, ..., 1."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise UserError(f"{shown(steps)} alpha steps: give a whole number >= 2 (e.g. 11: 0, 0.1, ..., 1)")
    return tuple(round(float(alpha), 6) for alpha in np.linspace(0.0, 1.0, int(steps)))


def head_from_text_features(text_features: np.ndarray) -> Head:
    """The head that IS the zero-shot classifier: L2-normalised class text embeddings, zero bias."""
    if text_features.ndim != 2:
        raise UserError(f"text features of shape {text_features.shape} must be (classes, dim), a row a class")
    weights = l2_normalize(text_features)  # as zero-shot computes it, dtype kept: the same scores bit for bit
    return weights, np.zeros(len(weights), dtype=weights.dtype)


def head_scores(x: np.ndarray, head: Head, logit_scale: float) -> np.ndarray:
    """(N, C) logits: logit_scale * x_hat @ W.T + b, x_hat the L2-normalised image features. With the zero-shot
    head this is CLIP's cosine similarity times its scale: the same ranking as zero-shot."""
    weights, bias = head
    return logit_scale * (l2_normalize(x) @ weights.T) + bias


def predict(x: np.ndarray, head: Head, logit_scale: float) -> np.ndarray:
    return head_scores(x, head, logit_scale).argmax(axis=1)


def as_linear_head(head: Head, logit_scale: float) -> LinearHead:
    """``head`` with its logit scale folded into the weights: the same logits (up to rounding) on any images, on
    the scale of every other saved head, so that it mixes with them by weight alone."""
    weights, bias = head
    return LinearHead(logit_scale * weights, bias, True)


def train_head(x: np.ndarray, y: np.ndarray, start: Head, logit_scale: float, training: HeadTraining,
               seed: int) -> Head:
    """The head fitted to (x, y) from ``start``: cross-entropy on the full batch, Adam, plus
    weight_decay * ||W - W_start||^2, which keeps the weights near the text embeddings they start from
    (plain weight decay would pull them toward 0, which is no classifier at all).

    Seeded, on one thread (as the study's probe: tiny matrices, and threaded reductions vary run to run),
    so the same inputs give the same weights.
    """
    import torch  # imported here: scoring needs no torch (~2 s to import)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        features = torch.from_numpy(l2_normalize(x.astype(np.float32)))
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
        initial = torch.from_numpy(start[0].astype(np.float32))
        weights = initial.clone().requires_grad_(True)
        bias = torch.from_numpy(start[1].astype(np.float32)).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([weights, bias], lr=training.lr)
        for _ in range(training.steps):
            logits = logit_scale * features @ weights.T + bias
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss = loss + training.weight_decay * (weights - initial).pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return weights.detach().numpy().copy(), bias.detach().numpy().copy()
    finally:
        torch.set_num_threads(threads)


def interpolate(start: Head, end: Head, alpha: float) -> Head:
    """(1 - alpha) * start + alpha * end, weights and bias alike: alpha = 0 gives ``start`` exactly,
    alpha = 1 ``end``."""
    return tuple((1.0 - alpha) * a + alpha * b for a, b in zip(start, end))  # type: ignore[return-value]


def choose_alpha(val_x: np.ndarray, val_y: np.ndarray, start: Head, end: Head, logit_scale: float,
                 alphas: tuple[float, ...]) -> tuple[float, float]:
    """The alpha of the mix of ``start`` and ``end`` with the best validation top-1, and that top-1 (``best_alpha``)."""
    return best_alpha({a: float(np.mean(predict(val_x, interpolate(start, end, a), logit_scale) == val_y))
                       for a in alphas})


class ZsinitRuns(NamedTuple):
    """A point of the curve and its runs, one per seed: the trained heads, the alphas validation chose, and the
    test predictions of the heads and of their mixes (runs, N)."""

    point: dict[str, Any]
    trained: list[Head]
    alphas: list[float]
    init_predictions: np.ndarray
    mix_predictions: np.ndarray


def zsinit_point(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                 test: tuple[np.ndarray, np.ndarray], start: Head, logit_scale: float, k: int, label: str,
                 seeds: list[int], training: HeadTraining, bootstrap: Bootstrap) -> ZsinitRuns:
    """One point of the curve: per seed, k images per class of ``train`` (label "all": all of them), the head
    trained from ``start`` ("init") and its validation-chosen mix with ``start`` ("mix"), both tested on
    ``test``: mean, spread and bootstrap interval of the mean over seeds; with the runs' heads, kept so that
    other images can be scored without training again."""
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = train, val, test
    num_classes = len(start[0])
    predictions: dict[str, list[np.ndarray]] = {"init": [], "mix": []}
    alphas, val_top1, heads = [], [], []
    for seed in seeds:
        indices = np.arange(len(train_y)) if label == "all" else few_shot_indices(train_y, k, seed)
        trained = train_head(train_x[indices], train_y[indices], start, logit_scale, training, seed)
        heads.append(trained)
        alpha, top1 = choose_alpha(val_x, val_y, start, trained, logit_scale, training.alphas)
        alphas.append(alpha)
        val_top1.append(top1)
        predictions["init"].append(predict(test_x, trained, logit_scale))
        predictions["mix"].append(predict(test_x, interpolate(start, trained, alpha), logit_scale))
    point: dict[str, Any] = {"k": k, "label": label, "runs": len(seeds)}
    for name, runs in predictions.items():
        stats = spread(np.array([np.mean(run == test_y) for run in runs]))
        interval = bootstrap.interval(test_y, np.stack(runs), num_classes)
        point[name] = {**{f"{stat}_top1": stats[stat] for stat in ("mean", "std", "min", "max")},
                       "top1_low": interval["top1_low"], "top1_high": interval["top1_high"]}
    point["mix"] |= {"mean_alpha": round(float(np.mean(alphas)), 6), "alphas": alphas,
                     "mean_val_top1": round(float(np.mean(val_top1)), 6)}
    return ZsinitRuns(point, heads, alphas, *(np.stack(predictions[name]).astype(np.int64) for name in ("init", "mix")))


def run_heads(runs: ZsinitRuns, seeds: list[int], start: Head, logit_scale: float, test_y: np.ndarray) -> Heads:
    """The runs of a point as saved heads, the logit scale folded in: per seed the trained head
    ("zsinit/k=<label>/seed=<seed>") and its validation-chosen mix ("zsinit_mix/..."), with their predictions on
    the test images (labels ``test_y``)."""
    k, label = int(runs.point["k"]), str(runs.point["label"])
    heads, info, predictions = [], [], []
    for seed, trained, alpha, *predicted in zip(seeds, runs.trained, runs.alphas, runs.init_predictions,
                                                runs.mix_predictions):
        heads += [as_linear_head(trained, logit_scale), as_linear_head(interpolate(start, trained, alpha), logit_scale)]
        run = {"k": k, "label": label, "seed": int(seed)}
        info += [{"name": f"zsinit/k={label}/seed={seed}", "classifier": "zsinit", **run},
                 {"name": f"zsinit_mix/k={label}/seed={seed}", "classifier": "zsinit_mix", **run, "alpha": alpha}]
        predictions += predicted
    return Heads(heads, info, np.stack(predictions), test_y)
