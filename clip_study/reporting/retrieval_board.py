"""The leaderboard's retrieval part: every model's retrieval.json on each caption set side by side, the leader of
each direction and recall@k (the highest recall, the first in the params' order on a tie), each other model's
difference from that leader with its paired interval, and the front page's section that says it in words.

The differences are computed elsewhere (the stage's ``compare``, on both models' ranks files): this module finds
the leaders, asks ``compare`` once per (model, leader) pair, and places and renders what it answers. The words come
from the intervals alone: a model is 'behind' the leader when the interval of its difference lies below 0, 'ahead'
when above (a percentile interval may miss its point), 'not distinguishable' otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from clip_study.errors import UserError
from clip_study.metrics_files.leaderboard import (ModelRetrieval, RecallComparison, RetrievalBoard, RetrievalLeaders,
                                                  VersusLeader)
from clip_study.metrics_files.retrieval import FILES, Direction, RetrievalMetrics
from clip_study.metrics_files.scores import Estimate
from clip_study.reporting.text import interval_text, markdown_table, p_text, points

DIRECTIONS = {"image_to_text": "image → text", "text_to_image": "text → image"}
"""Each direction's field in retrieval.json, and its name on the front page."""
TASK = "zeroshot_retrieval"
"""CLIP_benchmark's name of the task (results.csv's ``task``)."""
Fix = Callable[[str, str], str]
"""(model, caption set) -> how to rebuild that pair's retrieval files (the retrieval stage's rerun line)."""
Comparisons = dict[str, dict[str, dict[str, dict[str, dict[str, float]]]]]
"""caption set -> model -> direction -> 'recall@<k>' -> {difference, low, high, p_value}: the model minus that
(direction, k)'s leader; the leader itself is absent."""
Compare = Callable[[str, str, str], dict[str, dict[str, dict[str, Any]]]]
"""(caption set, model, leader) -> direction -> 'recall@<k>' -> {difference, low, high, p_value}: the model minus the
leader at every k, both ways."""


def recall_key(k: int) -> str:
    return f"recall@{k}"


def recall_ks(metrics: RetrievalMetrics) -> list[int]:
    """The k of a retrieval.json's recall@k, in its order (the params' recall_at when it was written)."""
    return [int(key.removeprefix("recall@")) for key in metrics.image_to_text.recall]


def direction(metrics: RetrievalMetrics, name: str) -> Direction:
    """One direction of a retrieval.json by its field name (one of DIRECTIONS)."""
    return {"image_to_text": metrics.image_to_text, "text_to_image": metrics.text_to_image}[name]


def check_retrieval_files(caption_set: str, metrics: dict[str, RetrievalMetrics], fix: Fix) -> None:
    """Refuse what would set side by side numbers that are not comparable: a retrieval.json of another model or
    caption set (misplaced), directions whose k differ, or models scored on other images, captions, template, k or
    intervals than the first model (one is stale)."""
    first, *_ = metrics
    base = metrics[first]
    for model, record in metrics.items():
        if (record.model, record.caption_set) != (model, caption_set):
            raise UserError(f"the retrieval.json of {model} on {caption_set} is that of {record.model} on "
                            f"{record.caption_set}: {fix(model, caption_set)}")
        if list(record.text_to_image.recall) != list(record.image_to_text.recall):
            raise UserError(f"the retrieval.json of {model} on {caption_set} reports image_to_text "
                            f"{', '.join(record.image_to_text.recall)} but text_to_image "
                            f"{', '.join(record.text_to_image.recall)}: {fix(model, caption_set)}")
        for what, mine, theirs in (("images", record.images, base.images),
                                   ("captions", record.captions, base.captions),
                                   ("template", record.template, base.template),
                                   ("recall@k", list(record.image_to_text.recall), list(base.image_to_text.recall)),
                                   ("intervals", record.intervals.to_json(), base.intervals.to_json())):
            if mine != theirs:
                raise UserError(f"{model} and {first} were scored with different {what} of {caption_set} ({mine} and "
                                f"{theirs}; one is stale): {fix(model, caption_set)}, or that of {first}")


def read_retrieval(metrics_dir: Path, models: list[str], caption_sets: list[str],
                   fix: Fix) -> dict[str, dict[str, RetrievalMetrics]]:
    """Every model's retrieval.json on each caption set (``<metrics_dir>/<model>/<caption set>/retrieval.json``):
    caption set -> model -> it, in the orders given, each caption set's checked side by side."""
    found: dict[str, dict[str, RetrievalMetrics]] = {}
    for caption_set in caption_sets:
        found[caption_set] = {model: FILES[0].read(Path(metrics_dir) / model / caption_set / "retrieval.json",
                                                   fix=fix(model, caption_set)) for model in models}
        check_retrieval_files(caption_set, found[caption_set], fix)
    return found


def retrieval_leaders(metrics: dict[str, RetrievalMetrics]) -> RetrievalLeaders:
    """The leader of each direction and recall@k on one caption set (model -> its retrieval.json, params order):
    the highest recall, the first model on a tie."""
    models = list(metrics)
    keys = list(metrics[models[0]].image_to_text.recall)
    return RetrievalLeaders(**{name: {key: max(models, key=lambda model: direction(metrics[model], name)
                                               .recall[key].value) for key in keys}
                               for name in DIRECTIONS})


def leader_comparisons(metrics: dict[str, dict[str, RetrievalMetrics]], compare: Compare) -> Comparisons:
    """Each model against the leader of each direction and recall@k of each caption set (``metrics``: caption set
    -> model -> its retrieval.json, checked), from ``compare``, asked once per (caption set, model, leader)."""
    found: Comparisons = {}
    for caption_set, by_model in metrics.items():
        leaders = retrieval_leaders(by_model)
        for model in by_model:
            answers: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}  # leader -> compare's answer
            for name in DIRECTIONS:
                for key, leader in getattr(leaders, name).items():
                    if leader == model:
                        continue
                    if leader not in answers:
                        answers[leader] = compare(caption_set, model, leader)
                    try:
                        values = answers[leader][name][key]
                    except KeyError:
                        raise ValueError(f"compare({caption_set!r}, {model!r}, {leader!r}) has no {name} {key}: it "
                                         "must answer every direction and recall@k") from None
                    found.setdefault(caption_set, {}).setdefault(model, {}).setdefault(name, {})[key] = {
                        field: float(values[field]) for field in ("difference", "low", "high", "p_value")}
    return found


def _comparison(values: dict[str, float]) -> RecallComparison:
    return RecallComparison(**{field: round(float(values[field]), 6)
                               for field in ("difference", "low", "high", "p_value")})


def build_retrieval_boards(metrics: dict[str, dict[str, RetrievalMetrics]],
                           comparisons: Comparisons) -> dict[str, RetrievalBoard]:
    """The leaderboard's ``retrieval`` entries (``metrics``: caption set -> model -> its retrieval.json, params
    order, checked by ``check_retrieval_files``; ``comparisons``: ``leader_comparisons``'), placed under each model:
    a comparison for every (direction, k) the model does not lead, none for one it leads."""
    boards = {}
    for caption_set, by_model in metrics.items():
        leaders = retrieval_leaders(by_model)
        entries = {}
        for model, record in by_model.items():
            given = comparisons.get(caption_set, {}).get(model, {})
            versus = {}
            for name in DIRECTIONS:
                keys = [key for key, leader in getattr(leaders, name).items() if leader != model]
                placed = given.get(name, {})
                if set(placed) != set(keys):
                    raise ValueError(f"the comparisons of {model} on {caption_set} {name} are for "
                                     f"{sorted(placed) or 'no k'}, its non-leading k are {keys or 'none'}")
                versus[name] = {key: _comparison(placed[key]) for key in keys}
            entries[model] = ModelRetrieval(image_to_text=record.image_to_text, text_to_image=record.text_to_image,
                                            vs_leader=VersusLeader(**versus))
        first = next(iter(by_model.values()))
        boards[caption_set] = RetrievalBoard(template=first.template, images=first.images, captions=first.captions,
                                             intervals=first.intervals, leaders=leaders, models=entries)
    return boards


# the front page


def _rank_text(record: Direction) -> str:
    rank: Estimate = record.mean_rank
    return f"{rank.value:.2f} [{rank.low:.2f}, {rank.high:.2f}], median {record.median_rank:g}"


def caption_set_table(board: RetrievalBoard) -> list[str]:
    """One row per model (params order): recall@k both ways with intervals, the leader's value bold, then the mean
    rank with its interval and the median rank, both ways."""
    keys = list(board.leaders.image_to_text)
    header = ["model", *(f"{DIRECTIONS[name]} R@{key.removeprefix('recall@')}" for name in DIRECTIONS
                         for key in keys),
              *(f"mean rank, {DIRECTIONS[name]}" for name in DIRECTIONS)]
    rows = []
    for model, entry in board.models.items():
        cells = []
        for name in DIRECTIONS:
            leaders, recall = getattr(board.leaders, name), getattr(entry, name).recall
            for key in keys:
                value = recall[key]
                cells.append(f"**{value.value:.4f}** [{value.low:.4f}, {value.high:.4f}]" if leaders[key] == model
                             else interval_text(value.value, value.low, value.high))
        rows.append([f"**{model}**", *cells, *(_rank_text(getattr(entry, name)) for name in DIRECTIONS)])
    return markdown_table(header, rows)


def comparison_words(key: str, leader: str, comparison: RecallComparison, resamples: int) -> str:
    """One (direction, k) of a model against its leader, in words from the interval of the difference."""
    k, p = f"R@{key.removeprefix('recall@')}", p_text(comparison.p_value, resamples)
    if comparison.high < 0:
        return (f"{k} behind **{leader}** by {points(-comparison.difference)} points [{points(-comparison.high)}, "
                f"{points(-comparison.low)}], {p}")
    if comparison.low > 0:
        return (f"{k} ahead of **{leader}** by {points(comparison.difference)} points [{points(comparison.low)}, "
                f"{points(comparison.high)}], {p}")
    return (f"{k} not distinguishable from **{leader}** ({points(comparison.difference, True)} points "
            f"[{points(comparison.low, True)}, {points(comparison.high, True)}], {p})")


def model_line(model: str, entry: ModelRetrieval, leaders: RetrievalLeaders, resamples: int) -> str | None:
    """A model's line against the leaders, direction by direction (None: it leads every direction and k)."""
    parts = []
    for name in DIRECTIONS:
        versus = getattr(entry.vs_leader, name)
        words = [comparison_words(key, leader, versus[key], resamples) if key in versus else
                 f"R@{key.removeprefix('recall@')} the leader" for key, leader in getattr(leaders, name).items()]
        if versus:
            parts.append(f"{DIRECTIONS[name][0].upper()}{DIRECTIONS[name][1:]}: {'; '.join(words)}")
    return f"- **{model}**: {'. '.join(parts)}." if parts else None


def retrieval_section(boards: dict[str, RetrievalBoard], examples: dict[tuple[str, str], str], confidence: float,
                      resamples: int) -> list[str]:
    """The front page's '## Retrieval': per caption set, its table, one line per model that does not lead
    everywhere, in words, and links to each model's example queries (``examples``: (model, caption set) -> the
    relative path of its retrieval.png)."""
    out = ["## Retrieval\n",
           "Zero-shot retrieval on caption datasets (CLIP_benchmark's `zeroshot_retrieval`): every image and every "
           "caption embedded, each query's results ranked by cosine similarity. Image → text (CLIP_benchmark: text "
           "retrieval): each image a query, right when any of its captions is among the first k (R@k). Text → image "
           "(CLIP_benchmark: image retrieval): each caption a query, right when its image is among the first k. The "
           "mean and median rank are those of the first right result (1: first). Each interval is a "
           f"{round(100 * confidence)} % bootstrap interval from {resamples} draws of the images, each with all its "
           "captions. The leader of each direction and k (bold) has the highest recall; every other model is compared "
           "with it on the same draws, behind or ahead when the interval of the difference excludes 0. Every number: "
           f"[`results.csv`](results.csv), task `{TASK}`.\n"]
    for caption_set, board in boards.items():
        prompt = (f"each caption encoded in the template `{board.template}`" if board.template is not None
                  else "the captions encoded as given")
        lines = [line for model, entry in board.models.items()
                 if (line := model_line(model, entry, board.leaders, resamples)) is not None]
        out += [f"### {caption_set}: {board.images} images, {board.captions} captions\n",
                f"{board.images} image queries, {board.captions} caption queries; {prompt}.\n",
                *caption_set_table(board), *lines, *([""] if lines else []),
                *example_figures(caption_set, board, examples)]
    return out


def example_figures(caption_set: str, board: RetrievalBoard, examples: dict[tuple[str, str], str]) -> list[str]:
    """A few queries both ways with their top results, where a reader would rather look than read: the figure of the
    leader at image -> text recall@(first k) shown, every model's linked."""
    shown = next(iter(board.leaders.image_to_text.values()))
    return ["Example queries, both ways, with each one's top results: " + ", ".join(
                f"[{model}]({examples[model, caption_set]})" for model in board.models) + f"; {shown}'s:\n",
            f"![{shown} on {caption_set}: image queries with their top captions, caption queries with their top "
            f"images]({examples[shown, caption_set]})\n"]
