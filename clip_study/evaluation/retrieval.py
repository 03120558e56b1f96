"""Zero-shot retrieval, image to text and text to image: the rank of each query's first right result, recall@k, mean
and median rank, with intervals that resample images, at COCO's scale and far beyond it.

Definitions:

- Inputs: ``image_features`` (N_img, D) and ``text_features`` (N_txt, D) float embeddings, not normalised, and
  ``text_image`` (N_txt,) int, the image index of each caption; every image has at least one caption.
- Score s(i, t): the cosine of image i and caption t. Each row is L2-normalised once: its norm in float64, then the
  float32 row times float32(1 / norm); s(i, t) is the dot product of those float32 unit vectors, summed in float64
  (the products of float32 numbers are exact there).
- Ranking order of a query's candidates: descending score, ties broken by candidate index ascending (what
  ``np.argsort(-scores, kind="stable")`` gives).
- image_to_text: each image is a query over all N_txt captions; its rank is the 1-based position of its FIRST right
  caption (any caption t with text_image[t] == i). text_to_image: each caption is a query over all N_img images;
  its rank is the position of its one image. recall@k: the fraction of queries with rank <= k; also the mean rank
  and the median rank.

How (``rank_all``): the N_img x N_txt score matrix is never built. First each query's positive score is computed
directly: a caption's with its image, an image's the maximum over its captions (the lowest caption index among
equal maxima: its first right caption). Then ONE pass over tiles (an image block x a text block, at most
``tile_scores`` scores) serves both directions: per query, count the non-positive candidates that beat its positive
(score strictly greater, or equal with a lower index); rank = 1 + count. A query's own positives are taken out of
every tile before counting (set to -inf), so a positive never counts against itself. The tiles are float32 matrix
products on ``device`` (torch: the same code on "cpu" and "cuda"; TF32 switched off for the pass); only blocks of
rows travel there, read from the inputs block by block (numpy memmaps welcome). A float32 dot product of D-value
unit vectors is within W = (1.01 D + 8) 2^-24 of the float64 score (the rounding bound of a D-term sum), so a
tile entry more than W above (below) the positive's score beats (does not beat) it, whatever the rounding; the
few entries within W are recomputed as float64 scores and compared with the tie rule. Every comparison is
therefore the one the float64 scores make, whatever the tiles and the device: a caption embedded twice ties
exactly with itself. Memory beyond the inputs: O(N_img + N_txt) per-query numbers, two blocks of rows and one
tile, never O(N_img x N_txt).

Intervals (``evaluate_retrieval``, ``compare_retrieval``): a percentile bootstrap over IMAGES, since the captions
of an image are not independent queries. The draw, for an independent reimplementation:
``rng = np.random.default_rng(bootstrap.seed)``; per resample, in order, ONE call
``draws = rng.integers(0, N_img, size=N_img)`` (the same numbers as ``intervals.stratified_resamples`` with every
image in one class); ``w = np.bincount(draws, minlength=N_img)`` counts each image's draws. An image query counts
w[i] times, a caption query w[text_image[t]] times (once per draw of its image): a statistic on a resample is the
w-weighted mean over the image queries, or over the caption queries with caption t weighted w[text_image[t]].
The interval is ``np.percentile`` (linear) of the resampled statistic at (1 - confidence) / 2 and its complement.
Two models compared on the same queries share every resample (paired); the p-value of a difference is the one
``shift.bootstrap_p_values`` gives (as for the shift stage's drops): min(1, 2 (m + 1) / (resamples + 1)), m the
resamples on the rarer side of 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clip_study.errors import BadFileError, UserError, shown
from clip_study.evaluation.intervals import Bootstrap, percentile_interval
from clip_study.evaluation.shift import TestSet, bootstrap_p_values, resampled_accuracies
from clip_study.files import load_npz, save_npz

if TYPE_CHECKING:
    import torch

DIRECTIONS = ("image_to_text", "text_to_image")
BENCHMARK_NAMES = {"image_to_text": "text_retrieval", "text_to_image": "image_retrieval"}
"""CLIP_benchmark's name of each direction: its "image_retrieval_recall@k" is text -> image."""
TILE_SCORES = 1 << 24  # scores per tile: 64 MB of float32, whatever N_img x N_txt
DOT_CHUNK = 1024  # pairs per exact float64 dot call, the last padded: one shape, so a pair's sum has fixed bits
NORM_VALUES = 1 << 22  # input values per block of the norm pass (32 MB in float64)
RANKS_FIX = "write it again (rank_all, then Ranks.save)"


@dataclass(frozen=True)
class Ranks:
    """The rank of every query's first right result, both ways, and the caption -> image map they were ranked with:
    all the statistics and their resamples need, and what two models are compared on."""

    image_to_text: np.ndarray  # (N_img,) int64, 1 = the first caption is right
    text_to_image: np.ndarray  # (N_txt,) int64
    text_image: np.ndarray  # (N_txt,) int64: the image of each caption

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("image_to_text", "text_to_image", "text_image"):
            array = np.asarray(getattr(self, name))
            if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
                raise UserError(f"{name} = {shown(array)} must be a non-empty 1-D array of whole numbers")
            arrays[name] = array.astype(np.int64, copy=False)
        images, captions = len(arrays["image_to_text"]), len(arrays["text_image"])
        if len(arrays["text_to_image"]) != captions:
            raise UserError(f"text_to_image has {len(arrays['text_to_image'])} ranks for the {captions} captions of "
                            "text_image: give one rank per caption")
        _check_text_image(arrays["text_image"], images)
        for name, candidates in (("image_to_text", captions), ("text_to_image", images)):
            ranks = arrays[name]
            if ranks.min() < 1 or ranks.max() > candidates:
                bad = int(np.flatnonzero((ranks < 1) | (ranks > candidates))[0])
                raise UserError(f"{name}[{bad}] = {ranks[bad]} is no rank among {candidates} candidates (1 to "
                                f"{candidates}): pass the ranks rank_all returned")
            object.__setattr__(self, name, ranks)
        object.__setattr__(self, "text_image", arrays["text_image"])

    def save(self, path: Path) -> None:
        """An npz of the three arrays, named as the fields (``files.save_npz``: no pickle, same bytes every time)."""
        save_npz(Path(path), image_to_text=self.image_to_text, text_to_image=self.text_to_image,
                 text_image=self.text_image)

    @classmethod
    def load(cls, path: Path, fix: str | None = None) -> Ranks:
        """The ranks ``save`` wrote, checked; a damaged file is a BadFileError with ``fix`` (default: write it
        again)."""
        fix = fix or RANKS_FIX
        arrays = load_npz(path, fix)
        try:
            return cls(arrays["image_to_text"], arrays["text_to_image"], arrays["text_image"])
        except BadFileError:
            raise
        except UserError as error:
            raise BadFileError(path, f"holds no valid ranks ({error})", fix) from error


def rank_all(image_features: np.ndarray, text_features: np.ndarray, text_image: np.ndarray, *,
             device: str | torch.device = "cpu", tile_scores: int = TILE_SCORES, progress: bool = True) -> Ranks:
    """The rank of every image's first right caption and of every caption's image (the module's definitions), in
    one pass over (image block x text block) tiles of at most ``tile_scores`` scores on ``device`` (some 6 bytes
    a score: the float32 tile and two bool masks); a tqdm bar over the tiles unless ``progress`` is False."""
    import torch

    images, texts = _features(image_features, "image_features"), _features(text_features, "text_features")
    _same_width(images, texts, "image_features", "text_features")
    owners = _text_image(text_image, len(texts), len(images))
    device, tile_scores = _device(device), _tile_scores(tile_scores)
    n_img, n_txt, dim = len(images), len(texts), images.shape[1]
    image_scale, text_scale = _inverse_norms(images, "image_features"), _inverse_norms(texts, "text_features")
    rows, cols = _tile_shape(n_img, n_txt, dim, tile_scores)
    with _ieee_matmul():
        caption_scores = _positive_scores(images, texts, image_scale, text_scale, owners, device, cols)
        # an image's positive: its best caption, the lowest index among equal maxima
        order = np.lexsort((np.arange(n_txt), -caption_scores, owners))
        first_caption = order[np.r_[0, np.flatnonzero(np.diff(owners[order])) + 1]]
        rounding = _width(dim)
        on = lambda array: torch.from_numpy(np.ascontiguousarray(array)).to(device)  # noqa: E731
        image_scores = caption_scores[first_caption]
        image_queries = _Queries(on(image_scores), on(first_caption),
                                 *(on(bound) for bound in _bounds(image_scores, rounding)), n_img, device)
        text_queries = _Queries(on(caption_scores), on(owners),
                                *(on(bound) for bound in _bounds(caption_scores, rounding)), n_txt, device)
        owners_on = on(owners)
        from tqdm import tqdm
        tiles = math.ceil(n_img / rows) * math.ceil(n_txt / cols)
        # a text block's columns padded to whole 8-byte words of the bool masks (_count_true), the padding -inf
        padded = -(-cols // 8) * 8
        tile = torch.empty(rows * padded, device=device)  # reused: no fresh pages per tile
        masks = torch.empty((2, rows * padded), dtype=torch.bool, device=device)
        with tqdm(total=tiles, desc="retrieval ranks", unit="tile", disable=not progress) as bar:
            for i0 in range(0, n_img, rows):
                i1 = min(i0 + rows, n_img)
                image_block = _block(images, image_scale, i0, i1, device)
                for t0 in range(0, n_txt, cols):
                    t1 = min(t0 + cols, n_txt)
                    text_block = _block(texts, text_scale, t0, t1, device)
                    width = -(-(t1 - t0) // 8) * 8  # the block's columns, padded
                    if width > t1 - t0:
                        text_block = torch.cat([text_block, text_block.new_zeros((width - (t1 - t0), dim))])
                    scores = torch.mm(image_block, text_block.T, out=tile[:(i1 - i0) * width].view(i1 - i0, width))
                    scores[:, t1 - t0:] = -math.inf
                    block_owners = owners_on[t0:t1]
                    mine = torch.nonzero((block_owners >= i0) & (block_owners < i1)).squeeze(1)
                    # the positives never count (the exact comparison would not count them either: belt and braces)
                    scores[block_owners[mine] - i0, mine] = -math.inf
                    tile_masks = masks[:, :scores.numel()].view(2, *scores.shape)
                    image_queries.count(scores, 1, i0, t0, image_block, text_block, tile_masks)
                    text_queries.count(scores, 0, t0, i0, text_block, image_block, tile_masks)
                    bar.update()
    return Ranks(image_queries.ranks(), text_queries.ranks(), owners)


class _Queries:
    """One direction's queries during the pass: each one's positive score (float64) and index, the float32 band
    [low, high] around the score outside which a float32 tile entry decides alone, and the count so far. The band
    and the count have 8 more entries, +inf and ignored: the padding columns of a tile are queries of nothing."""

    def __init__(self, positive: torch.Tensor, best: torch.Tensor, low: torch.Tensor, high: torch.Tensor, count: int,
                 device: torch.device) -> None:
        import torch
        padding = torch.full((8,), math.inf, dtype=low.dtype, device=device)
        self.positive, self.best = positive, best
        self.low, self.high = torch.cat([low, padding]), torch.cat([high, padding])
        self.beaten = torch.zeros(count + 8, dtype=torch.int64, device=device)
        self.queries = count

    def count(self, scores: torch.Tensor, along: int, q0: int, c0: int, queries: torch.Tensor,
              candidates: torch.Tensor, masks: torch.Tensor) -> None:
        """Count the candidates beating each query of a tile: its rows are queries q0.. when ``along`` is 1 (count
        along each row), its columns when 0; ``masks``: two bool buffers of the tile's shape."""
        import torch
        across = 1 - along
        stop = q0 + scores.shape[across]
        shape = (-1, 1) if along == 1 else (1, -1)
        low, high = self.low[q0:stop].view(shape), self.high[q0:stop].view(shape)
        mask = masks[0]
        above = _count_true(torch.gt(scores, high, out=mask), along)
        within = _count_true(torch.ge(scores, low, out=mask), along) - above
        self.beaten[q0:stop] += above
        near = torch.nonzero(within).squeeze(1)
        if not len(near):
            return
        if 8 * len(near) > len(within):  # many queries have a near entry: mark the band in the whole tile
            band = mask.logical_and_(torch.le(scores, high, out=masks[1]))  # mask: scores >= low
            first, second = torch.nonzero(band, as_tuple=True)
            local, other = (first, second) if along == 1 else (second, first)
        else:  # a few: in their rows (columns) only
            sub = scores.index_select(across, near)
            band = (sub >= low.index_select(across, near)) & (sub <= high.index_select(across, near))
            first, second = torch.nonzero(band, as_tuple=True)
            local, other = (near[first], second) if along == 1 else (near[second], first)
        exact = _exact_dots(queries, local, candidates, other)
        query = local + q0
        positive, best = self.positive[query], self.best[query]
        beats = (exact > positive) | ((exact == positive) & (other + c0 < best))
        self.beaten.index_add_(0, query, beats.to(torch.int64))

    def ranks(self) -> np.ndarray:
        return (self.beaten[:self.queries] + 1).cpu().numpy()


WORD_GROUP = 127  # int64 words summed at once by _count_true: each byte lane stays <= 127, the sign bit clear


def _count_true(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """int64 count of True along ``dim`` (0 or 1) of a 2-D bool mask. A contiguous one whose rows are whole 8-byte
    words is summed as int64 words, WORD_GROUP at a time, each byte of a word a lane that never carries into the
    next; its lanes are then added up: some 20 times faster on a CPU than summing bools, exact all the same."""
    import torch
    rows, cols = mask.shape
    if cols % 8 or not mask.is_contiguous() or mask.storage_offset() % 8:
        return mask.sum(dim)
    words = mask.view(torch.int64)  # (rows, cols / 8)
    if dim == 1:
        total = torch.zeros(rows, dtype=torch.int64, device=mask.device)
        for start in range(0, words.shape[1], WORD_GROUP):
            total += words[:, start:start + WORD_GROUP].sum(1).view(torch.uint8).view(rows, 8).sum(1)
        return total
    total = torch.zeros(cols, dtype=torch.int64, device=mask.device)
    for start in range(0, rows, WORD_GROUP):
        total += words[start:start + WORD_GROUP].sum(0).view(torch.uint8)
    return total


def top_k(queries: np.ndarray, candidates: np.ndarray, k: int, *, device: str | torch.device = "cpu",
          tile_scores: int = TILE_SCORES) -> tuple[np.ndarray, np.ndarray]:
    """The k best candidates of each query by cosine, in the ranking order (descending score, ties by index): (Q, k)
    int64 indices and (Q, k) float64 scores (the unit vectors of ``rank_all``, products summed in float64). Computed
    over candidate blocks with a running merge, so showing a few queries' top results costs no score matrix: a
    float64 tile of at most ``tile_scores`` scores (some 10 bytes a score with its masks)."""
    import torch

    queries, candidates = _features(queries, "queries"), _features(candidates, "candidates")
    _same_width(queries, candidates, "queries", "candidates")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(candidates):
        raise UserError(f"k = {shown(k)} must be a whole number from 1 to the {len(candidates)} candidates")
    device, tile_scores = _device(device), _tile_scores(tile_scores)
    query_scale, candidate_scale = _inverse_norms(queries, "queries"), _inverse_norms(candidates, "candidates")
    rows, cols = _tile_shape(len(queries), len(candidates), queries.shape[1], tile_scores)
    indices, scores = np.empty((len(queries), k), dtype=np.int64), np.empty((len(queries), k))
    for q0 in range(0, len(queries), rows):
        q1 = min(q0 + rows, len(queries))
        block = _block(queries, query_scale, q0, q1, device).double()
        best_scores = torch.empty((q1 - q0, 0), dtype=torch.float64, device=device)
        best = torch.empty((q1 - q0, 0), dtype=torch.int64, device=device)
        for c0 in range(0, len(candidates), cols):
            c1 = min(c0 + cols, len(candidates))
            tile = block @ _block(candidates, candidate_scale, c0, c1, device).double().T
            new_scores, new = _ordered_top(tile, k)
            # earlier blocks' indices are lower, so a stable sort of [best, new] keeps ties in index order
            merged_scores, merged = torch.cat([best_scores, new_scores], 1), torch.cat([best, new + c0], 1)
            order = torch.sort(merged_scores, dim=1, descending=True, stable=True).indices[:, :k]
            best_scores, best = merged_scores.gather(1, order), merged.gather(1, order)
        indices[q0:q1], scores[q0:q1] = best.cpu().numpy(), best_scores.cpu().numpy()
    return indices, scores


def _ordered_top(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The min(k, C) best of each row of (Q, C) ``scores`` in the ranking order: values and column positions.
    ``topk`` finds the right values but may pick any of several equal ones at the cut: rows where it had a choice
    take the lowest positions instead."""
    import torch
    kept = min(k, scores.shape[1])
    values, positions = torch.topk(scores, kept, dim=1)
    edge = values[:, -1:]
    at_edge = (values == edge).sum(1)
    ties = scores == edge
    chose = torch.nonzero(ties.sum(1) > at_edge).squeeze(1)
    if len(chose):
        tied = ties.index_select(0, chose)
        above = torch.zeros_like(tied).scatter_(1, positions[chose], values[chose] > edge[chose])
        take = above | (tied & (tied.cumsum(1) <= at_edge[chose, None]))  # + the lowest positions of the tied
        positions[chose] = torch.nonzero(take)[:, 1].view(len(chose), kept)
        values[chose] = scores[chose].gather(1, positions[chose])
    positions, by_position = positions.sort(1)
    values = values.gather(1, by_position)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, order), positions.gather(1, order)


def evaluate_retrieval(ranks: Ranks, ks: list[int], bootstrap: Bootstrap) -> dict[str, dict]:
    """Recall@k, mean rank (with intervals) and median rank both ways, in the shape of
    ``metrics_files.retrieval.Direction.to_json()`` (``Direction.from_json(result[direction])``), 6 decimals."""
    ks = _ks(ks)
    values, statistics = _per_image(ranks, ks)
    point = statistics(values.mean(0)[None])
    resampled = statistics(_resampled_means(values, bootstrap))
    medians = {"image_to_text": ranks.image_to_text, "text_to_image": ranks.text_to_image}

    def estimate(key: tuple[str, str]) -> dict[str, float]:
        low, high = percentile_interval(resampled[key], bootstrap.confidence)
        return {"value": _round(point[key][0]), "low": _round(low), "high": _round(high)}

    return {direction: {"queries": len(medians[direction]), "benchmark_name": BENCHMARK_NAMES[direction],
                        "recall": {f"recall@{k}": estimate((direction, f"recall@{k}")) for k in ks},
                        "mean_rank": estimate((direction, "mean_rank")),
                        "median_rank": _round(np.median(medians[direction]))}
            for direction in DIRECTIONS}


def compare_retrieval(a: Ranks, b: Ranks, ks: list[int],
                      bootstrap: Bootstrap) -> dict[str, dict[str, dict[str, float]]]:
    """Model A's recall@k minus model B's on the same queries, both ways: the difference on all the queries, its
    interval over resamples shared by both (paired) and its two-sided bootstrap p-value, 6 decimals."""
    if len(a.text_image) != len(b.text_image) or len(a.image_to_text) != len(b.image_to_text) or \
            not np.array_equal(a.text_image, b.text_image):
        raise UserError(f"a ranks {len(a.image_to_text)} images and {len(a.text_image)} captions, b "
                        f"{len(b.image_to_text)} and {len(b.text_image)}, with another caption -> image map: compare "
                        "two models' Ranks of the same caption set")
    ks = _ks(ks)
    values_a, statistics = _per_image(a, ks)
    values_b, _ = _per_image(b, ks)
    width = values_a.shape[1]
    both = np.concatenate([values_a, values_b], axis=1)
    resampled = _resampled_means(both, bootstrap)

    def differences(rows: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        first, second = statistics(rows[:, :width]), statistics(rows[:, width:])
        return {key: first[key] - second[key] for key in first}

    point, spread = differences(both.mean(0)[None]), differences(resampled)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for direction in DIRECTIONS:
        result[direction] = {}
        for k in ks:
            key = (direction, f"recall@{k}")
            low, high = percentile_interval(spread[key], bootstrap.confidence)
            result[direction][f"recall@{k}"] = {"difference": _round(point[key][0]), "low": _round(low),
                                                "high": _round(high),
                                                "p_value": _round(float(bootstrap_p_values(spread[key])))}
    return result


Statistics = Callable[[np.ndarray], dict[tuple[str, str], np.ndarray]]


def _per_image(ranks: Ranks, ks: list[int]) -> tuple[np.ndarray, Statistics]:
    """(N_img, H) per-image sums every statistic is a ratio of, and the function that turns (R, H) means of them
    over the images (of all the images, or of resamples) into each statistic's R values: the same code for both.
    Columns: the image query's hit at each k and its rank; the sums over the image's captions of their hits at
    each k and of their ranks; the image's caption count."""
    owners, n_img, n = ranks.text_image, len(ranks.image_to_text), len(ks)
    per_caption = lambda weights: np.bincount(owners, weights=weights, minlength=n_img)  # noqa: E731
    columns = [ranks.image_to_text <= k for k in ks] + [ranks.image_to_text]
    columns += [per_caption(ranks.text_to_image <= k) for k in ks] + [per_caption(ranks.text_to_image)]
    columns.append(per_caption(None))
    values = np.stack(columns, axis=1).astype(np.float64)

    def statistics(means: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        captions = means[:, -1]
        found = {("image_to_text", "mean_rank"): means[:, n], ("text_to_image", "mean_rank"): means[:, 2 * n + 1] /
                 captions}
        for j, k in enumerate(ks):
            found[("image_to_text", f"recall@{k}")] = means[:, j]
            found[("text_to_image", f"recall@{k}")] = means[:, n + 1 + j] / captions
        return found

    return values, statistics


def _resampled_means(values: np.ndarray, bootstrap: Bootstrap) -> np.ndarray:
    """(R, H) mean of each column of (N_img, H) ``values`` over each resample's drawn images (with repeats), drawn
    as the module says: ``shift.resampled_accuracies`` with every image in one class. It takes fractions, so each
    column is scaled into [0, 1] by its maximum and back."""
    if not isinstance(bootstrap, Bootstrap):
        raise UserError(f"bootstrap = {shown(bootstrap)} must be a Bootstrap(resamples=..., seed=..., confidence=...)")
    scale = values.max(axis=0)
    scale[scale == 0] = 1
    one_class = TestSet((values / scale).T, np.zeros(len(values), dtype=np.int64))
    return resampled_accuracies(one_class, bootstrap.resamples, bootstrap.seed) * scale


def _round(value: float) -> float:
    return round(float(value), 6)


def _ks(ks: Sequence[int]) -> list[int]:
    valid = isinstance(ks, Sequence) and not isinstance(ks, (str, bytes)) and len(ks) > 0 and all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1 for k in ks) and \
        len(set(ks)) == len(ks)
    if not valid:
        raise UserError(f"ks = {shown(ks)} must be a non-empty list of distinct whole numbers >= 1 (e.g. [1, 5, 10])")
    return [int(k) for k in ks]


# -- the pass's pieces -------------------------------------------------------------------------------------------

def _features(values: np.ndarray, name: str) -> np.ndarray:
    """A 2-D float array as given (a memmap stays one: blocks are read from it as needed)."""
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    if array.ndim != 2 or 0 in array.shape or not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"{name} of shape {array.shape} and dtype {array.dtype} must be a non-empty (N, D) float "
                        "array, one embedding a row")
    return array


def _same_width(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    if first.shape[1] != second.shape[1]:
        raise UserError(f"{first_name} has {first.shape[1]} dimensions and {second_name} {second.shape[1]}: pass "
                        "embeddings of the same model")


def _text_image(text_image: np.ndarray, captions: int, images: int) -> np.ndarray:
    array = np.asarray(text_image)
    if array.shape != (captions,) or not np.issubdtype(array.dtype, np.integer):
        raise UserError(f"text_image = {shown(array)} of shape {array.shape} must be a 1-D integer array, the image "
                        f"index of each of the {captions} captions")
    array = array.astype(np.int64, copy=False)
    _check_text_image(array, images)
    return array


def _check_text_image(text_image: np.ndarray, images: int) -> None:
    outside = (text_image < 0) | (text_image >= images)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise UserError(f"text_image[{bad}] = {text_image[bad]} is no image index from 0 to {images - 1}: give each "
                        "caption the row of its image")
    captionless = np.flatnonzero(np.bincount(text_image, minlength=images) == 0)
    if len(captionless):
        raise UserError(f"image {captionless[0]} has no caption in text_image ({len(captionless)} such): every image "
                        "needs one or more captions; drop captionless images first")


def _device(device: str | torch.device) -> torch.device:
    import torch
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise UserError(f"device = {shown(device)} is no torch device: use 'cpu' or 'cuda'") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device = {shown(str(device))}: this machine has no CUDA GPU torch can use; use 'cpu'")
    return device


def _tile_scores(tile_scores: int) -> int:
    if isinstance(tile_scores, bool) or not isinstance(tile_scores, (int, np.integer)) or tile_scores < 1:
        raise UserError(f"tile_scores = {shown(tile_scores)} must be a whole number of scores per tile >= 1 "
                        f"(default {TILE_SCORES:,})")
    return int(tile_scores)


def _tile_shape(rows: int, cols: int, dim: int, tile_scores: int) -> tuple[int, int]:
    """Rows and columns of a tile of at most ``tile_scores`` scores, as square as the sizes allow (each block of
    the inner side is read once per block of the outer side); a block has at most max(tile_scores / D,
    tile_scores / sqrt(tile_scores)) rows, so a short side never makes the other's blocks huge."""
    longest = max(1, tile_scores // dim, tile_scores // max(1, math.isqrt(tile_scores)))
    block_rows = min(rows, longest, max(1, math.isqrt(tile_scores)))
    block_cols = min(cols, longest, max(1, tile_scores // block_rows))
    return min(rows, longest, max(1, tile_scores // block_cols)), block_cols


def _inverse_norms(features: np.ndarray, name: str) -> np.ndarray:
    """(N,) float32 1 / the L2 norm of each row (the norm in float64), one block of rows at a time."""
    step = max(1, NORM_VALUES // features.shape[1])
    scale = np.empty(len(features), dtype=np.float32)
    for start in range(0, len(features), step):
        block = np.asarray(features[start:start + step], dtype=np.float64)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise UserError(f"{name} row {start + int(np.flatnonzero(~finite)[0])} holds NaN or infinity: embed it "
                            "again")
        with np.errstate(divide="ignore", over="ignore"):
            inverse = (1 / np.sqrt(np.einsum("ij,ij->i", block, block))).astype(np.float32)
        bad = ~np.isfinite(inverse)
        if bad.any():
            raise UserError(f"{name} row {start + int(np.flatnonzero(bad)[0])} is all zeros (or too close to zero to "
                            "normalise): a cosine needs a non-zero embedding; drop that row")
        scale[start:start + step] = inverse
    return scale


def _block(features: np.ndarray, scale: np.ndarray, start: int, stop: int, device: torch.device) -> torch.Tensor:
    """Rows start:stop as float32 unit vectors on ``device``."""
    return _unit_rows(np.array(features[start:stop], dtype=np.float32), scale[start:stop], device)


def _unit_rows(rows: np.ndarray, scale: np.ndarray, device: torch.device) -> torch.Tensor:
    """Float32 rows times their float32 1 / norm, on ``device``: elementwise, so a row has the same bits in every
    block or gather that reads it."""
    import torch
    unit = torch.from_numpy(rows).to(device)  # on the cpu: ``rows`` itself, a copy the caller made
    return unit.mul_(torch.from_numpy(np.ascontiguousarray(scale)).to(device)[:, None])


def _positive_scores(images: np.ndarray, texts: np.ndarray, image_scale: np.ndarray, text_scale: np.ndarray,
                     owners: np.ndarray, device: torch.device, step: int) -> np.ndarray:
    """(N_txt,) float64 score of each caption with its image, ``step`` captions at a time."""
    scores = np.empty(len(texts))
    for start in range(0, len(texts), step):
        stop = min(start + step, len(texts))
        rows = owners[start:stop]
        image_rows = _unit_rows(np.array(images[rows], dtype=np.float32), image_scale[rows], device)
        text_rows = _block(texts, text_scale, start, stop, device)
        scores[start:stop] = _exact_dots(image_rows, None, text_rows, None).cpu().numpy()
    return scores


def _exact_dots(first: torch.Tensor, first_rows: torch.Tensor | None, second: torch.Tensor,
                second_rows: torch.Tensor | None) -> torch.Tensor:
    """(n,) float64 dot products of the pairs of rows ``first[first_rows]``, ``second[second_rows]`` (None: all the
    rows, in order) of two (m, D) float32 tensors. The products are exact in float64, and every call sums DOT_CHUNK
    pairs (the last chunk padded with zeros), so one pair of rows gets the same bits in every call, however many
    pairs it came with; the rows are gathered a chunk at a time."""
    import torch
    count = len(first) if first_rows is None else len(first_rows)
    out = torch.empty(count, dtype=torch.float64, device=first.device)
    for start in range(0, count, DOT_CHUNK):
        stop = min(start + DOT_CHUNK, count)
        pick = lambda rows, chosen: rows[start:stop] if chosen is None else rows[chosen[start:stop]]  # noqa: E731
        x, y = pick(first, first_rows).double(), pick(second, second_rows).double()
        if stop - start < DOT_CHUNK:
            padding = torch.zeros((DOT_CHUNK - (stop - start), x.shape[1]), dtype=torch.float64, device=x.device)
            x, y = torch.cat([x, padding]), torch.cat([y, padding])
        out[start:stop] = (x * y).sum(1)[:stop - start]
    return out


def _width(dim: int) -> float:
    """W: a bound on |float32 tile entry - float64 score| for unit vectors of ``dim`` values (the D-term sum's
    rounding, D 2^-24, with room for the norms' and float64's own rounding)."""
    return (1.01 * dim + 8) * 2.0 ** -24


def _bounds(scores: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 low <= scores - width and high >= scores + width, rounded outward."""
    low, high = scores - width, scores + width
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    low32 = np.where(low32 > low, np.nextafter(low32, np.float32(-np.inf)), low32)
    high32 = np.where(high32 < high, np.nextafter(high32, np.float32(np.inf)), high32)
    return low32, high32


@contextmanager
def _ieee_matmul() -> Iterator[None]:
    """float32 products in full float32 for the pass (TF32 or bf16 would break W's bound), the caller's setting
    restored after."""
    import torch
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
