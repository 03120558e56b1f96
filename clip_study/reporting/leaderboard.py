"""Models side by side: one row per model from its metrics files, paired tests between models on the same
test images, the study's front page (the leaderboard, what differs, links to each model's report) and its
figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.errors import UserError
from clip_study.evaluation.intervals import compared
from clip_study.evaluation.metrics import chosen_key
from clip_study.metrics_files.extract import ExtractMetrics
from clip_study.metrics_files.fewshot import FewshotMetrics
from clip_study.metrics_files.leaderboard import (FEWSHOT_K, ChosenClassifier, ChosenTemplate, Leaderboard,
                                                  LeaderboardRow, ModelComparison)
from clip_study.metrics_files.logreg import LogregMetrics
from clip_study.metrics_files.probe import ProbeMetrics
from clip_study.metrics_files.scores import CLASSIFIERS, PairedTest
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.models.families import FAMILIES
from clip_study.reporting.plotting import interval_spans, plt, save
from clip_study.reporting.text import top1_text

FULL_NAMES = dict(zip(CLASSIFIERS, ("zero-shot", "linear probe", "logistic probe")))
"""Each classifier's name on the front page, which sets models side by side (a model's report: SHORT_NAMES)."""


def model_row(short: str, extract: ExtractMetrics, zeroshot: ZeroshotMetrics, probe: ProbeMetrics,
              logreg: LogregMetrics, fewshot: FewshotMetrics) -> LeaderboardRow:
    """One model's leaderboard entry from its stages' metrics files (numbers, plus what they are)."""
    templates = zeroshot.templates
    # among templates only, chosen on the train images as zeroshot chooses
    template = chosen_key({key: result.scores.choice_top1 for key, result in templates.items()})
    fewshot_point = next((point for point in fewshot.curve if point.shots.label == FEWSHOT_K), None)
    return LeaderboardRow(
        model=short, checkpoint=extract.checkpoint, family=extract.family, parameters=extract.parameters,
        device=extract.device,
        zeroshot_template=ChosenTemplate(key=template, template=templates[template].template,
                                         test=templates[template].scores.test.top1_interval()),
        zeroshot_ensembles={key: result.scores.test.top1_interval()
                            for key, result in (zeroshot.ensembles or {}).items()},
        zeroshot=ChosenClassifier(key=zeroshot.best, test=zeroshot.results()[zeroshot.best].test.top1_interval()),
        probe=probe.test.top1_interval(), logreg=logreg.test.top1_interval(),
        fewshot_16=fewshot_point.test.mean_interval() if fewshot_point else None,
        zeroshot_ece=zeroshot.calibration.before.ece,
    )


def paired_between_models(predictions: dict[str, dict[str, np.ndarray]], leader: str) -> dict[str, ModelComparison]:
    """Each model against ``leader``, classifier by classifier (McNemar on the same test images)."""
    labels = predictions[leader]["labels"]
    for short, arrays in predictions.items():
        if not np.array_equal(arrays["labels"], labels):
            raise UserError(f"models {short} and {leader} were scored on different test images: rerun "
                            f"`dvc repro` so that every model's stages read the same data/subset")
    return {short: ModelComparison(**{key: PairedTest(**compared(arrays[key] == labels,
                                                                 predictions[leader][key] == labels))
                                      for key in CLASSIFIERS})
            for short, arrays in predictions.items() if short != leader}


def build_leaderboard(rows: list[LeaderboardRow], predictions: dict[str, dict[str, np.ndarray]],
                      num_classes: int) -> Leaderboard:
    """The leaderboard: rows in the params' order, the leader (best zero-shot top-1, the classifier each model
    chose on its train images) and every other model compared with it."""
    leader = max(rows, key=lambda row: row.zeroshot.test.top1).model
    return Leaderboard(num_classes=num_classes, num_test_images=int(len(predictions[leader]["labels"])),
                       leader=leader, models=rows, vs_leader=paired_between_models(predictions, leader))


def _objective(family: str) -> str:
    return f"{family}, {FAMILIES[family].objective}" if family in FAMILIES else family


def what_differs(board: Leaderboard) -> list[str]:
    """One sentence per model against the leader, from the measured numbers."""
    rows = {row.model: row for row in board.models}
    lead = rows[board.leader]
    sentences = []
    for short, tests in board.vs_leader.items():
        row = rows[short]
        objectives = (f" ({_objective(row.family)} against {_objective(lead.family)})"
                      if row.family != lead.family else "")
        parts = [f"{name} {row.top1(key).top1:.3f} against {lead.top1(key).top1:.3f} ({tests.test(key).verdict})"
                 for key, name in FULL_NAMES.items()]
        sentences.append(
            f"**{short}** against the leader **{lead.model}**{objectives}: " + "; ".join(parts)
            + f". Zero-shot calibration before temperature scaling: ECE {row.zeroshot_ece:.3f} against "
              f"{lead.zeroshot_ece:.3f}.")
    return sentences


def _parameters(count: int) -> str:
    return f"{count / 1e6:.1f} M" if count >= 1e5 else f"{count / 1e3:.0f} k"


def leaderboard_report(board: Leaderboard, figure: str | None, reports: dict[str, str]) -> str:
    """The study's front page in markdown: ``figure`` (a relative path) and each model's report link."""
    rows = sorted(board.models, key=lambda row: -row.zeroshot.test.top1)
    ensembles = list(dict.fromkeys(key for row in rows for key in row.zeroshot_ensembles))
    header = ["model", "checkpoint", "family", "zero-shot, chosen [interval]", "best template",
              *(f"ensemble {key}" for key in ensembles), "linear probe", "logistic probe",
              f"few-shot, {FEWSHOT_K} per class", "encoded on", "parameters"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"**{row.model}**", f"`{row.checkpoint}`", row.family,
                 f"{top1_text(row.zeroshot.test)} (`{row.zeroshot.key}`)",
                 f"{row.zeroshot_template.test.top1:.4f} (`{row.zeroshot_template.template}`)",
                 *(f"{row.zeroshot_ensembles[key].top1:.4f}" if key in row.zeroshot_ensembles else "-"
                   for key in ensembles),
                 top1_text(row.probe), top1_text(row.logreg),
                 top1_text(row.fewshot_16) if row.fewshot_16 else "-",
                 row.device, _parameters(row.parameters)]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    out = [f"# CLIP study: {len(rows)} model{'s' if len(rows) > 1 else ''} side by side\n",
           f"{board.num_classes} classes, {board.num_test_images} test images, the same for every model. "
           "Zero-shot is each model's classifier chosen on its train images (\"best template\": the best single "
           "template, chosen the same way); intervals are percentile bootstraps over the test images. No speed "
           "here, as it differs between runs: each extract run logs what it measured to "
           "`data/speed/<model>.json` (untracked).\n",
           "## Leaderboard\n", "\n".join(lines) + "\n"]
    if board.vs_leader:
        out += ["## Against the leader\n", f"McNemar's exact test against **{board.leader}** on the same "
                "test images, classifier by classifier (5 % level).\n"]
        test_rows = [[short, *(tests.test(key).verdict for key in CLASSIFIERS)]
                     for short, tests in board.vs_leader.items()]
        out += ["| model | " + " | ".join(FULL_NAMES.values()) + " |",
                "|" + "---|" * (len(FULL_NAMES) + 1),
                *("| " + " | ".join(row) + " |" for row in test_rows), "",
                "## What differs\n", *(f"{sentence}\n" for sentence in what_differs(board))]
    if figure:
        out.append(f"![top-1 per model]({figure})\n")
    out += ["## Each model's report\n",
            *(f"- [{row.model}]({reports[row.model]}): every metric of `{row.checkpoint}`" for row in board.models),
            ""]
    return "\n".join(out)


def plot_leaderboard(board: Leaderboard, figures: Path) -> str:
    """Top-1 with its interval per model and classifier (zero-shot, linear probe, logistic probe); the file name."""
    rows = sorted(board.models, key=lambda row: row.zeroshot.test.top1)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.8 * len(rows)))
    height = 0.8 / len(FULL_NAMES)
    for i, (key, name) in enumerate(FULL_NAMES.items()):
        results = [row.top1(key) for row in rows]
        ax.barh(np.arange(len(rows)) + i * height, [r.top1 for r in results], height,
                xerr=interval_spans(results), capsize=3, label=name)
    ax.set_yticks(np.arange(len(rows)) + height * (len(FULL_NAMES) - 1) / 2, [row.model for row in rows])
    ax.set_xlabel("test top-1 (bars: bootstrap interval)")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    figures.mkdir(parents=True, exist_ok=True)
    save(fig, figures, "leaderboard")
    return "leaderboard.png"
