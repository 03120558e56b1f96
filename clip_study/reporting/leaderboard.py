"""Models side by side over datasets: a row per (model, dataset) pair from its metrics files, each model's mean
top-1 over the datasets and its average rank with paired bootstrap intervals (``evaluation.ranking``), paired
tests against each dataset's leader on the same test images, the study's front page and its figures (its
distribution-shift part: ``reporting.shift_board``; its retrieval part: ``reporting.retrieval_board``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.intervals import Bootstrap, compared
from clip_study.evaluation.metrics import chosen_key
from clip_study.evaluation.ranking import across_datasets
from clip_study.metrics_files.leaderboard import (FEWSHOT_K, AcrossDatasets, ChosenClassifier, ChosenTemplate,
                                                  ClassifiersAcrossDatasets, DatasetBoard, Leaderboard,
                                                  LeaderboardModel, ModelComparison, PairedBootstrap, PairRow,
                                                  RetrievalBoard, ShiftBoard)
from clip_study.metrics_files.scores import CLASSIFIERS, PairedTest
from clip_study.reporting.pairs import PairMetrics
from clip_study.reporting.plotting import interval_spans, plt, save
from clip_study.reporting.retrieval_board import retrieval_section
from clip_study.reporting.shift_board import shift_section
from clip_study.reporting.text import markdown_table, top1_text

FULL_NAMES = dict(zip(CLASSIFIERS, ("zero-shot", "linear probe", "logistic probe")))
"""Each classifier's name on the front page, which sets models side by side (a model's report: SHORT_NAMES)."""
Predictions = dict[str, np.ndarray]
"""A pair's test predictions (data/predictions/<model>/<dataset>.npz): ``labels`` and one array per classifier."""


def pair_row(pair: PairMetrics) -> PairRow:
    """One model's entry on one dataset from the pair's metrics files (numbers, plus what they are)."""
    zeroshot, templates = pair.zeroshot, pair.zeroshot.templates
    # among templates only, chosen on the train images as zeroshot chooses
    template = chosen_key({key: result.scores.choice_top1 for key, result in templates.items()})
    fewshot_point = next((point for point in pair.fewshot.curve if point.shots.label == FEWSHOT_K), None)
    return PairRow(
        device=pair.extract.device,
        zeroshot_template=ChosenTemplate(key=template, template=templates[template].template,
                                         test=templates[template].scores.test.top1_interval()),
        zeroshot_ensembles={key: result.scores.test.top1_interval()
                            for key, result in (zeroshot.ensembles or {}).items()},
        zeroshot=ChosenClassifier(key=zeroshot.best, test=zeroshot.results()[zeroshot.best].test.top1_interval()),
        probe=pair.probe.test.top1_interval(), logreg=pair.logreg.test.top1_interval(),
        fewshot_16=fewshot_point.test.mean_interval() if fewshot_point else None,
        zeroshot_ece=zeroshot.calibration.before.ece,
    )


def shared_labels(predictions: dict[str, Predictions], dataset: str) -> np.ndarray:
    """The test labels every model's predictions on ``dataset`` share (model -> its predictions)."""
    first, *others = predictions
    labels = predictions[first]["labels"]
    for model in others:
        if not np.array_equal(predictions[model]["labels"], labels):
            raise UserError(f"models {model} and {first} were scored on different test images of {dataset}: rerun "
                            "`dvc repro` so that every model's stages read the same subset of it")
    return labels


def check_predictions(predictions: Predictions, row: PairRow, model: str, dataset: str) -> None:
    """Refuse predictions whose top-1 is not the metrics files' (stale ones), so that the means and ranks are of
    the classifiers the tables show."""
    for key in CLASSIFIERS:
        top1 = round(float(np.mean(predictions[key] == predictions["labels"])), 6)
        if top1 != row.top1(key).top1:
            raise UserError(f"the {key} predictions of {model} on {dataset} score top-1 {top1}, its metrics files "
                            f"{row.top1(key).top1}: rerun `dvc repro` (summary@{model}-{dataset} writes them)")


def paired_with_leader(predictions: dict[str, Predictions], leader: str) -> dict[str, ModelComparison]:
    """Each model against ``leader``, classifier by classifier (McNemar on the same test images of one dataset)."""
    labels = predictions[leader]["labels"]
    return {model: ModelComparison(**{key: PairedTest(**compared(arrays[key] == labels,
                                                                 predictions[leader][key] == labels))
                                      for key in CLASSIFIERS})
            for model, arrays in predictions.items() if model != leader}


def correctness(predictions: dict[str, dict[str, Predictions]], classifier: str, models: list[str],
                datasets: list[str], labels: list[np.ndarray]) -> list[np.ndarray]:
    """Per dataset, whether each model's ``classifier`` is right on each test image: (models, test images)."""
    return [np.stack([predictions[model][dataset][classifier] == dataset_labels for model in models])
            for dataset, dataset_labels in zip(datasets, labels)]


def build_leaderboard(pairs: dict[str, dict[str, PairMetrics]], predictions: dict[str, dict[str, Predictions]],
                      bootstrap: Bootstrap, shift: dict[str, ShiftBoard] | None = None,
                      retrieval: dict[str, RetrievalBoard] | None = None) -> Leaderboard:
    """The leaderboard from every pair's metrics files and predictions (model -> dataset -> ..., in the params'
    order; every model on every dataset): each dataset's leader (best zero-shot top-1) and paired tests against
    it, each model's mean and average rank over the datasets, and the overall leader (best zero-shot average
    rank); ``shift``: the datasets with shift sets (``shift_board.build_shift_boards``), ``retrieval``: the caption
    sets (``retrieval_board.build_retrieval_boards``); None or empty: none."""
    models, datasets = list(pairs), list(next(iter(pairs.values())))
    rows = {model: {dataset: pair_row(pairs[model][dataset]) for dataset in datasets} for model in models}
    boards, labels = {}, []
    for dataset in datasets:
        on_dataset = {model: predictions[model][dataset] for model in models}
        labels.append(shared_labels(on_dataset, dataset))
        for model in models:
            check_predictions(on_dataset[model], rows[model][dataset], model, dataset)
        leader = max(models, key=lambda model: rows[model][dataset].zeroshot.test.top1)
        boards[dataset] = DatasetBoard(num_classes=pairs[leader][dataset].zeroshot.num_classes,
                                       num_test_images=len(labels[-1]), leader=leader,
                                       vs_leader=paired_with_leader(on_dataset, leader))
    standings = {key: across_datasets(correctness(predictions, key, models, datasets, labels), labels, bootstrap)
                 for key in CLASSIFIERS}
    entries = []
    for i, model in enumerate(models):
        extract = pairs[model][datasets[0]].extract
        entries.append(LeaderboardModel(
            model=model, checkpoint=extract.checkpoint, family=extract.family, parameters=extract.parameters,
            datasets=rows[model],
            across_datasets=ClassifiersAcrossDatasets(**{key: AcrossDatasets(**standings[key][i])
                                                         for key in CLASSIFIERS})))
    leader = min(entries, key=lambda entry: (entry.across_datasets.zeroshot.average_rank,
                                             -entry.across_datasets.zeroshot.mean_top1)).model
    return Leaderboard(leader=leader, interval=PairedBootstrap(resamples=bootstrap.resamples,
                                                               confidence=bootstrap.confidence, seed=bootstrap.seed),
                       models=entries, datasets=boards, shift=shift or None, retrieval=retrieval or None)


def _parameters(count: int) -> str:
    return f"{count / 1e6:.1f} M" if count >= 1e5 else f"{count / 1e3:.0f} k"


def _standing(entry: LeaderboardModel, classifier: str) -> tuple[float, float]:
    """Sort key of a model in a classifier's table: best average rank first, then the higher mean."""
    across = entry.across_datasets.of(classifier)
    return across.average_rank, -across.mean_top1


def classifier_table(board: Leaderboard, classifier: str) -> list[str]:
    """Models x datasets for one classifier, with the mean and the average rank over the datasets."""
    header = ["model", "family", *board.datasets, "mean [interval]", "average rank [interval]"]
    rows = []
    for entry in sorted(board.models, key=lambda entry: _standing(entry, classifier)):
        across = entry.across_datasets.of(classifier)
        rows.append([f"**{entry.model}**", entry.family,
                     *(top1_text(entry.datasets[dataset].top1(classifier)) for dataset in board.datasets),
                     top1_text(across.mean_interval()),
                     f"{across.average_rank:.2f} [{across.average_rank_low:.2f}, {across.average_rank_high:.2f}]"])
    return markdown_table(header, rows)


def paired_section(board: Leaderboard) -> list[str]:
    """Each dataset's paired tests against its leader."""
    out = ["## Against each dataset's leader\n",
           "McNemar's exact test against the dataset's leader (best zero-shot top-1) on its test images, classifier "
           "by classifier (5 % level).\n"]
    for dataset, dataset_board in board.datasets.items():
        out.append(f"### {dataset}: leader **{dataset_board.leader}** ({dataset_board.num_classes} classes, "
                   f"{dataset_board.num_test_images} test images)\n")
        out += markdown_table(["model", *FULL_NAMES.values()],
                      [[model, *(tests.test(key).verdict for key in CLASSIFIERS)]
                       for model, tests in dataset_board.vs_leader.items()])
    return out


def details_section(board: Leaderboard, reports: dict[tuple[str, str], str]) -> list[str]:
    """Per dataset, every model's row in full (templates, ensembles, few-shot, calibration) and its report link."""
    out = ["## Each model on each dataset\n"]
    for dataset in board.datasets:
        entries = sorted(board.models, key=lambda entry: -entry.datasets[dataset].zeroshot.test.top1)
        ensembles = list(dict.fromkeys(key for entry in entries for key in entry.datasets[dataset].zeroshot_ensembles))
        header = ["model", "checkpoint", "zero-shot, chosen [interval]", "best template",
                  *(f"ensemble {key}" for key in ensembles), f"few-shot, {FEWSHOT_K} per class", "zero-shot ECE",
                  "encoded on", "parameters", "report"]
        rows = []
        for entry in entries:
            row = entry.datasets[dataset]
            rows.append([f"**{entry.model}**", f"`{entry.checkpoint}`",
                         f"{top1_text(row.zeroshot.test)} (`{row.zeroshot.key}`)",
                         f"{row.zeroshot_template.test.top1:.4f} (`{row.zeroshot_template.template}`)",
                         *(f"{row.zeroshot_ensembles[key].top1:.4f}" if key in row.zeroshot_ensembles else "-"
                           for key in ensembles),
                         top1_text(row.fewshot_16) if row.fewshot_16 else "-", f"{row.zeroshot_ece:.3f}",
                         row.device, _parameters(entry.parameters),
                         f"[report.md]({reports[entry.model, dataset]})"])
        out += [f"### {dataset}\n", *markdown_table(header, rows)]
    return out


def leaderboard_report(board: Leaderboard, figures: dict[str, str], reports: dict[tuple[str, str], str],
                       notes: str = "", robustness: dict[tuple[str, str], str] | None = None,
                       retrieval_examples: dict[tuple[str, str], str] | None = None) -> str:
    """The study's front page in markdown: ``figures`` (file name -> its relative path, as the plots name them),
    each pair's report link ((model, dataset) -> relative path) and the study's own ``notes`` (markdown: what the
    numbers cannot say themselves, e.g. how the models were trained), under the tables; with shift sets, the
    distribution-shift section after them (``robustness``: (model, shift set) -> its robustness figure's path); with
    caption sets, the retrieval section after that (``retrieval_examples``: (model, caption set) -> its example
    figure's path)."""
    models, datasets = len(board.models), len(board.datasets)
    confidence = round(100 * board.interval.confidence)
    out = [f"# CLIP study: {models} model{'s' if models > 1 else ''} on {datasets} dataset{'s' if datasets > 1 else ''}"
           "\n",
           "Zero-shot is each model's classifier chosen on the dataset's train images, the linear probe's epoch and "
           "the logistic probe's C are chosen on validation; each top-1 has its percentile bootstrap interval over the "
           "dataset's test images. The mean weighs every dataset the same; the average rank ranks the models on each "
           "dataset (1: the best, ties sharing their mean rank) and averages over the datasets, as LAION's "
           f"CLIP_benchmark does. Their {confidence} % intervals come from {board.interval.resamples} draws, each "
           "resampling every dataset's test images within each class, the same draw for every model. Every score of "
           "every pair is in [`results.csv`](results.csv), one row per model, dataset, classifier and metric. No "
           "speed here, as it differs between runs: each extract run logs what it measured under `data/speed/` "
           "(untracked).\n",
           f"Leader: **{board.leader}** (best zero-shot average rank).\n"]
    for key, name in FULL_NAMES.items():
        out += [f"## {name[0].upper()}{name[1:]}\n", *classifier_table(board, key)]
    out += [f"![{alt}]({figures[name]})\n" for name, alt in (("heatmap.png", "zero-shot top-1 per model and dataset"),
                                                             ("leaderboard.png", "mean top-1 over the datasets"))]
    if notes.strip():
        out += ["## Reading these numbers\n", notes.strip() + "\n"]
    if board.shift:
        out += shift_section(board.shift, figures, robustness or {}, board.interval.confidence,
                             board.interval.resamples)
    if board.retrieval:
        out += retrieval_section(board.retrieval, retrieval_examples or {}, board.interval.confidence,
                                 board.interval.resamples)
    if models > 1:
        out += paired_section(board)
    out += details_section(board, reports)
    return "\n".join(out)


def plot_heatmap(board: Leaderboard, figures: Path) -> str:
    """Zero-shot test top-1 of every model (rows, params order) on every dataset (columns), annotated; the file
    name."""
    top1 = np.array([[entry.datasets[dataset].zeroshot.test.top1 for dataset in board.datasets]
                     for entry in board.models])
    fig, ax = plt.subplots(figsize=(2.5 + 1.2 * top1.shape[1], 1.2 + 0.5 * top1.shape[0]))
    image = ax.imshow(top1, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(top1):
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=9,
                color="white" if value > 0.6 else "black")
    ax.set_xticks(range(top1.shape[1]), list(board.datasets))
    ax.set_yticks(range(top1.shape[0]), [entry.model for entry in board.models])
    fig.colorbar(image, ax=ax, label="zero-shot test top-1")
    figures.mkdir(parents=True, exist_ok=True)
    save(fig, figures, "heatmap")
    return "heatmap.png"


def plot_leaderboard(board: Leaderboard, figures: Path) -> str:
    """Mean top-1 over the datasets with its paired interval per model and classifier; the file name."""
    entries = sorted(board.models, key=lambda entry: entry.across_datasets.zeroshot.mean_top1)  # the best on top
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.8 * len(entries)))
    height = 0.8 / len(FULL_NAMES)
    for i, (key, name) in enumerate(FULL_NAMES.items()):
        means = [entry.across_datasets.of(key).mean_interval() for entry in entries]
        ax.barh(np.arange(len(entries)) + i * height, [mean.top1 for mean in means], height,
                xerr=interval_spans(means), capsize=3, label=name)
    ax.set_yticks(np.arange(len(entries)) + height * (len(FULL_NAMES) - 1) / 2, [entry.model for entry in entries])
    ax.set_xlabel(f"test top-1, mean over {len(board.datasets)} dataset(s) (bars: paired bootstrap interval)")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    figures.mkdir(parents=True, exist_ok=True)
    save(fig, figures, "leaderboard")
    return "leaderboard.png"
