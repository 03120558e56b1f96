"""clip_study/evaluation/retrieval.py against independent numpy computations written here: the full score matrix,
a stable argsort per query and the first right result, on a constructed case with exact ties (and duplicate
captions and images) and on random cases, with tiles forced small; recall, mean and median rank; top_k; the
intervals and the paired comparison against a loop that draws images as the module documents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clip_study.errors import BadFileError, UserError
from clip_study.evaluation import retrieval
from clip_study.evaluation.intervals import Bootstrap
from clip_study.evaluation.retrieval import (BENCHMARK_NAMES, DIRECTIONS, Ranks, compare_retrieval, evaluate_retrieval,
                                             rank_all, top_k)
from clip_study.metrics_files.retrieval import Direction

E0, E1, E2, E3 = np.eye(4)
H = np.array([0.5, 0.5, 0.5, 0.5])  # unit vectors of halves: every dot product below is exact in float32
G = np.array([0.5, -0.5, 0.5, -0.5])
K = np.array([0.5, 0.5, -0.5, -0.5])
P = np.array([0.6, 0.8, 0.0, 0.0])  # with a one-hot: 0.6 or 0.8, the same bits whichever way computed
Q = np.array([0.8, 0.6, 0.0, 0.0])
# image 3 duplicates image 1; image 4 and caption 7 are not unit (norms 2 and 4); image 6 has one caption
TIE_IMAGES = np.array([E0, H, E1, H, 2 * G, P, E3])
TIE_TEXTS = np.array([E0, E0, H, E1, K, H, E1, 4 * E1, P, E2, E3, E0, Q])
TIE_OWNERS = np.array([0, 1, 0, 2, 1, 3, 4, 2, 5, 4, 6, 3, 5])
# captions 0, 1 and 11 are one caption of three images (0, 1, 3), captions 2 and 5 of two (0, 3); captions 3 and 7
# are image 2's, both its best (E1), and caption 6, image 4's, is E1 too, between them


def unit_rows(features: np.ndarray) -> np.ndarray:
    """The module's definition: the float32 row times float32(1 / its float64 norm)."""
    rows = np.asarray(features, dtype=np.float32)
    inverse = (1 / np.sqrt((rows.astype(np.float64) ** 2).sum(axis=1))).astype(np.float32)
    return rows * inverse[:, None]


def score_matrix(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """(N_img, N_txt) float64 cosine, each pair's products summed alone (no matrix product's blocking)."""
    return (unit_rows(images).astype(np.float64)[:, None, :] * unit_rows(texts).astype(np.float64)[None]).sum(-1)


def reference_ranks(images: np.ndarray, texts: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's first right caption and each caption's image in the stable descending order of its row or
    column of the full score matrix, 1-based."""
    scores = score_matrix(images, texts)
    image_to_text = [1 + np.flatnonzero(owners[np.argsort(-scores[i], kind="stable")] == i)[0]
                     for i in range(len(images))]
    text_to_image = [1 + np.flatnonzero(np.argsort(-scores[:, t], kind="stable") == owners[t])[0]
                     for t in range(len(texts))]
    return np.array(image_to_text), np.array(text_to_image)


def random_case(seed: int, images: int = 23, dim: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random embeddings, 1 to 4 captions per image near their image, in shuffled order; two captions and one
    image copied bit for bit (exact ties that float32 tiles round independently)."""
    rng = np.random.default_rng(seed)
    owners = rng.permutation(np.repeat(np.arange(images), rng.integers(1, 5, images)))
    image_features = rng.normal(size=(images, dim)).astype(np.float32)
    texts = (image_features[owners] + rng.normal(size=(len(owners), dim))).astype(np.float32)
    texts[3] = texts[[t for t in range(len(owners)) if owners[t] != owners[3]][0]]
    texts[-1] = texts[0]
    image_features[5] = image_features[2] * 3
    return image_features, texts, owners


TILES = [1, 2, 5, 6, 7, 40, 1 << 24]


def test_the_constructed_ties_rank_as_the_hand_count_says():
    image_to_text, text_to_image = reference_ranks(TIE_IMAGES, TIE_TEXTS, TIE_OWNERS)
    # image 1 (H): its best caption is 1 (E0, 0.5); above it captions 2 and 5 (H, 1.0) and 8 and 12 (0.7), and
    # of the captions tied at 0.5 (0, 3, 7, 9, 10, 11) only caption 0 comes before caption 1
    assert image_to_text[1] == 6
    # caption 1 (E0) looks for image 1 (0.5): images 0 (1.0) and 5 (0.6) come first, image 3 ties after it
    assert text_to_image[1] == 3
    # caption 5 (H) looks for image 3 (H, 1.0): image 1 is the same vector with a lower index
    assert text_to_image[5] == 2
    # image 6 (E3) has one caption, E3 itself: first
    assert image_to_text[6] == 1
    # image 2 (E1): its first right caption is 3, and caption 6 (E1, image 4's) ties after it
    assert image_to_text[2] == 1


@pytest.mark.parametrize("tile_scores", TILES)
def test_rank_all_matches_the_full_matrix_with_exact_ties_whatever_the_tiles(tile_scores):
    ranks = rank_all(TIE_IMAGES, TIE_TEXTS, TIE_OWNERS, tile_scores=tile_scores, progress=False)
    image_to_text, text_to_image = reference_ranks(TIE_IMAGES, TIE_TEXTS, TIE_OWNERS)
    assert ranks.image_to_text.tolist() == image_to_text.tolist()
    assert ranks.text_to_image.tolist() == text_to_image.tolist()
    assert ranks.text_image.tolist() == TIE_OWNERS.tolist()
    assert ranks.image_to_text.dtype == ranks.text_to_image.dtype == np.int64


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tile_scores", TILES)
def test_rank_all_matches_the_full_matrix_on_random_cases(seed, tile_scores):
    images, texts, owners = random_case(seed)
    ranks = rank_all(images, texts, owners, tile_scores=tile_scores, progress=False)
    image_to_text, text_to_image = reference_ranks(images, texts, owners)
    assert ranks.image_to_text.tolist() == image_to_text.tolist()
    assert ranks.text_to_image.tolist() == text_to_image.tolist()


def test_the_tiles_split_queries_and_candidates_unevenly():
    assert retrieval._tile_shape(7, 13, 4, 6) == (2, 3)  # 4 image blocks (2, 2, 2, 1), 5 text blocks (3, ..., 1)
    assert retrieval._tile_shape(20_000, 100_000, 512, 1 << 24) == (4096, 4096)
    assert retrieval._tile_shape(3, 1_000_000, 512, 1 << 24) == (3, 32768)  # a block stays 16M values at most


def test_scores_closer_than_float32_can_tell_are_ranked_by_their_float64_value():
    """Three captions whose float32 tile entries are equal while their float64 scores are not: the band around the
    positive sends them to the exact comparison, where index order would have put the positive first."""
    base = np.array([0.75, 0.5, 0.25, 0.125], dtype=np.float32)
    step = np.spacing(np.float32(0.125))
    texts = np.stack([base, base + [0, 0, 0, step], base - [0, 0, 0, step]]).astype(np.float32)
    images = np.array([[1.0, 0, 0, 2.0 ** -10], [0, 0, 1.0, 0]], dtype=np.float32)
    owners = np.array([0, 1, 1])
    tile = torch.from_numpy(unit_rows(images)) @ torch.from_numpy(unit_rows(texts)).T
    assert tile[0, 0] == tile[0, 1] == tile[0, 2]  # float32 cannot tell them apart
    scores = score_matrix(images, texts)
    assert scores[0, 1] > scores[0, 0] > scores[0, 2]
    for tile_scores in (2, 1 << 24):
        ranks = rank_all(images, texts, owners, tile_scores=tile_scores, progress=False)
        assert ranks.image_to_text[0] == 2  # caption 0 (image 0's) after caption 1
        assert ranks.image_to_text.tolist() == reference_ranks(images, texts, owners)[0].tolist()
        assert ranks.text_to_image.tolist() == reference_ranks(images, texts, owners)[1].tolist()


def test_memmapped_float16_inputs_give_the_ranks_of_the_arrays_in_memory(tmp_path):
    images, texts, owners = random_case(3)
    stored = []
    for name, array in (("images", images), ("texts", texts)):
        mapped = np.memmap(tmp_path / f"{name}.f16", dtype=np.float16, mode="w+", shape=array.shape)
        mapped[:] = array
        mapped.flush()
        stored.append(np.memmap(tmp_path / f"{name}.f16", dtype=np.float16, mode="r", shape=array.shape))
    ranks = rank_all(*stored, owners, tile_scores=40, progress=False)
    expected = rank_all(np.array(stored[0]), np.array(stored[1]), owners, progress=False)
    assert ranks.image_to_text.tolist() == expected.image_to_text.tolist()
    assert ranks.text_to_image.tolist() == expected.text_to_image.tolist()


@pytest.mark.parametrize("shape", [(5, 16), (300, 2048), (130, 8), (3, 7), (4, 12)])
def test_count_true_counts_as_sum_does_along_both_axes(shape):
    rng = np.random.default_rng(0)
    for mask in (torch.from_numpy(rng.random(shape) < 0.3), torch.ones(shape, dtype=torch.bool)):
        for dim in (0, 1):
            assert retrieval._count_true(mask, dim).tolist() == mask.sum(dim).tolist()


def stable_top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize("tile_scores", [1, 6, 7, 40, 1 << 24])
def test_top_k_is_the_stable_argsort_of_each_row(tile_scores):
    for images, texts in ((TIE_IMAGES, TIE_TEXTS), random_case(4)[:2]):
        scores = score_matrix(images, texts)
        for queries, candidates, table in ((images, texts, scores), (texts, images, scores.T)):
            for k in (1, 3, len(candidates)):
                indices, found = top_k(queries, candidates, k, tile_scores=tile_scores)
                expected, expected_scores = stable_top(table, k)
                assert indices.tolist() == expected.tolist()
                assert found == pytest.approx(expected_scores, abs=1e-12)
    with pytest.raises(UserError, match="k = 14"):
        top_k(TIE_IMAGES, TIE_TEXTS, 14)


def test_top_k_ties_at_the_cut_take_the_lowest_indices():
    candidates = np.array([E1, E0, E0, E1, E0, E0, E2])  # for E0: four ties at 1.0 (1, 2, 4, 5), k = 3
    for tile_scores in (4, 40):  # blocks of 2 candidates, merged; one block where topk must choose among ties
        indices, found = top_k(np.array([E0, E1]), candidates, 3, tile_scores=tile_scores)
        assert indices.tolist() == [[1, 2, 4], [0, 3, 1]]
        assert found.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]


def ranks_of(seed: int, noise: float = 0.0) -> Ranks:
    images, texts, owners = random_case(seed, images=40)
    texts = texts + noise * np.random.default_rng(seed + 100).normal(size=texts.shape).astype(np.float32)
    return rank_all(images, texts, owners, progress=False)


def statistic_loop(ranks: Ranks, bootstrap: Bootstrap, statistic) -> np.ndarray:
    """The documented draw: per resample one ``rng.integers(0, N_img, size=N_img)``; each drawn image brings its
    image query and every one of its captions' queries."""
    rng = np.random.default_rng(bootstrap.seed)
    images = len(ranks.image_to_text)
    captions_of = [np.flatnonzero(ranks.text_image == i) for i in range(images)]
    values = []
    for _ in range(bootstrap.resamples):
        draws = rng.integers(0, images, size=images)
        captions = np.concatenate([captions_of[i] for i in draws])
        values.append(statistic(ranks.image_to_text[draws], ranks.text_to_image[captions]))
    return np.array(values)


def percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    return tuple(np.percentile(values, [tail, 100 - tail]))


def test_recall_mean_and_median_rank_with_intervals_against_a_loop_over_drawn_images():
    ranks = ranks_of(0)
    bootstrap = Bootstrap(resamples=200, seed=7, confidence=0.9)
    result = evaluate_retrieval(ranks, [1, 5, 10], bootstrap)
    assert list(result) == list(DIRECTIONS)
    for direction, index in (("image_to_text", 0), ("text_to_image", 1)):
        found = result[direction]
        own = (ranks.image_to_text, ranks.text_to_image)[index]
        assert found["queries"] == len(own) and found["benchmark_name"] == BENCHMARK_NAMES[direction]
        assert Direction.from_json(found).to_json() == found
        for k in (1, 5, 10):
            estimate = found["recall"][f"recall@{k}"]
            assert estimate["value"] == pytest.approx(np.mean(own <= k), abs=5e-7)
            loop = statistic_loop(ranks, bootstrap, lambda i2t, t2i: np.mean((i2t, t2i)[index] <= k))
            assert (estimate["low"], estimate["high"]) == pytest.approx(percentiles(loop, 0.9), abs=5e-7)
        loop = statistic_loop(ranks, bootstrap, lambda i2t, t2i: np.mean((i2t, t2i)[index]))
        assert found["mean_rank"]["value"] == pytest.approx(own.mean(), abs=5e-7)
        assert (found["mean_rank"]["low"], found["mean_rank"]["high"]) == pytest.approx(percentiles(loop, 0.9),
                                                                                         abs=5e-7)
        assert found["median_rank"] == np.median(own)
    assert BENCHMARK_NAMES == {"image_to_text": "text_retrieval", "text_to_image": "image_retrieval"}
    assert 0.3 < result["text_to_image"]["recall"]["recall@1"]["value"] < 1  # the captions are near their images


def test_compare_retrieval_is_the_paired_difference_with_the_loops_interval_and_p_value():
    a, b = ranks_of(0), ranks_of(0, noise=1.5)
    bootstrap = Bootstrap(resamples=300, seed=3, confidence=0.95)
    compared = compare_retrieval(a, b, [1, 5], bootstrap)
    alone = evaluate_retrieval(a, [1, 5], bootstrap), evaluate_retrieval(b, [1, 5], bootstrap)
    rng = np.random.default_rng(3)
    images = len(a.image_to_text)
    captions_of = [np.flatnonzero(a.text_image == i) for i in range(images)]
    draws = [rng.integers(0, images, size=images) for _ in range(300)]
    for direction, index in (("image_to_text", 0), ("text_to_image", 1)):
        for k in (1, 5):
            found = compared[direction][f"recall@{k}"]
            values = alone[0][direction]["recall"][f"recall@{k}"]["value"] - \
                alone[1][direction]["recall"][f"recall@{k}"]["value"]
            assert found["difference"] == pytest.approx(values, abs=2e-6)
            differences = []
            for drawn in draws:
                captions = np.concatenate([captions_of[i] for i in drawn])
                chosen = (drawn, captions)[index]
                differences.append(np.mean((a.image_to_text, a.text_to_image)[index][chosen] <= k)
                                   - np.mean((b.image_to_text, b.text_to_image)[index][chosen] <= k))
            differences = np.array(differences)
            assert (found["low"], found["high"]) == pytest.approx(percentiles(differences, 0.95), abs=5e-7)
            rarer = min((differences <= 0).sum(), (differences >= 0).sum())
            assert found["p_value"] == pytest.approx(min(1.0, 2 * (rarer + 1) / 301), abs=5e-7)
    assert compared["text_to_image"]["recall@1"]["difference"] > 0  # the noisy captions retrieve worse
    same = compare_retrieval(a, a, [1], bootstrap)["image_to_text"]["recall@1"]
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}


def one_line_error(call, match: str) -> None:
    with pytest.raises(UserError, match=match) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_bad_inputs_are_one_line_errors_naming_the_value():
    images, texts, owners = TIE_IMAGES, TIE_TEXTS, TIE_OWNERS
    nan = texts.copy()
    nan[4, 1] = np.nan
    cases = [
        (lambda: rank_all(images[0], texts, owners), r"image_features of shape \(4,\)"),
        (lambda: rank_all(images, texts[:, :3], owners), "4 dimensions and text_features 3"),
        (lambda: rank_all(images, texts, owners[:-1]), "text_image = .* 13 captions"),
        (lambda: rank_all(images, texts, owners.astype(float)), "text_image"),
        (lambda: rank_all(images, texts, np.where(owners == 6, 7, owners)), r"text_image\[10\] = 7 is no image index"),
        (lambda: rank_all(images, texts, np.where(owners == 6, 5, owners)), "image 6 has no caption"),
        (lambda: rank_all(images, nan, owners), "text_features row 4 holds NaN"),
        (lambda: rank_all(images * [[1], [1], [0], [1], [1], [1], [1]], texts, owners),
         "image_features row 2 is all zeros"),
        (lambda: rank_all(images, texts, owners, tile_scores=0), "tile_scores = 0"),
        (lambda: rank_all(images, texts, owners, device="tpu9"), "device = 'tpu9'"),
        (lambda: evaluate_retrieval(ranks_of(1), [1, 0], Bootstrap()), r"ks = \[1, 0\]"),
        (lambda: evaluate_retrieval(ranks_of(1), [5, 5], Bootstrap()), r"ks = \[5, 5\]"),
        (lambda: compare_retrieval(ranks_of(1), ranks_of(2), [1], Bootstrap()), "the same caption set"),
        (lambda: Ranks(np.array([1, 2]), np.array([1, 3]), np.array([0, 1])), r"text_to_image\[1\] = 3"),
    ]
    if not torch.cuda.is_available():
        cases.append((lambda: rank_all(images, texts, owners, device="cuda"), "no CUDA GPU"))
    for call, match in cases:
        one_line_error(call, match)


def test_ranks_save_and_load_round_trip_and_a_damaged_file_says_what_to_do(tmp_path):
    ranks = ranks_of(1)
    ranks.save(tmp_path / "ranks.npz")
    loaded = Ranks.load(tmp_path / "ranks.npz")
    for name in ("image_to_text", "text_to_image", "text_image"):
        assert getattr(loaded, name).tolist() == getattr(ranks, name).tolist()
        assert getattr(loaded, name).dtype == np.int64
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ranks.npz").read_bytes()[:200])
    with pytest.raises(BadFileError, match="cut.npz: is not a readable npz file .*; run retrieval again") as raised:
        Ranks.load(tmp_path / "cut.npz", fix="run retrieval again")
    assert "\n" not in str(raised.value)
    np.savez(tmp_path / "zero.npz", image_to_text=ranks.image_to_text * 0, text_to_image=ranks.text_to_image,
             text_image=ranks.text_image)
    with pytest.raises(BadFileError, match=r"zero.npz: holds no valid ranks \(image_to_text\[0\] = 0 .*write it again"):
        Ranks.load(tmp_path / "zero.npz")
    np.savez(tmp_path / "partial.npz", image_to_text=ranks.image_to_text)
    with pytest.raises(BadFileError, match="partial.npz: has no array 'text_to_image'"):
        Ranks.load(tmp_path / "partial.npz")
