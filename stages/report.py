"""Stage report: every metrics file of the study as one markdown report with PNG figures beside it,
readable offline (GitHub or any markdown viewer; no JavaScript), plus per-class accuracies for DVC plots.

Errors and per-class accuracy use one class list: the sorted union of the class names in the
confusion files (a class counts when it is an actual class of some test image)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages.config import parse_args, read_json, run, write_json  # noqa: E402
from stages.metrics import confusion_matrix, most_confused_pairs, overtaking_k, per_class_accuracy  # noqa: E402

REQUIRED = ("zeroshot", "similarity", "probe", "probe_curve")
OPTIONAL = {  # metrics file -> the stage that writes it (named in the report when the file is missing)
    "heldout": "heldout stage of the offline demo", "logreg": "logreg stage", "logreg_sweep": "logreg stage",
    "fewshot": "fewshot stage", "confusion_zeroshot": "zeroshot stage", "confusion_probe": "probe stage",
    "confusion_logreg": "logreg stage"}
METRICS = (("top1", "top-1"), ("top5", "top-5"), ("macro_f1", "macro-F1"),
           ("mean_per_class_recall", "mean per-class recall"))
CLASSIFIERS = (("zeroshot", "zero-shot"), ("probe", "probe"), ("logreg", "logreg"))
BLUE, ORANGE, GREEN, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def fmt(value) -> str:
    """Every number of the report: 4 decimals (``-`` when not measured)."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]) + "\n"


def shorten(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def missing(name: str) -> str:
    return f"_Not measured: `{name}.json` is missing; the {OPTIONAL[name]} writes it._\n"


def save(fig, figures: Path, name: str) -> None:
    fig.tight_layout()
    fig.savefig(figures / f"{name}.png", dpi=100, metadata={"Software": None})  # no version: same bytes
    plt.close(fig)


def prompt_rows(zeroshot: dict) -> list[tuple[str, str, dict]]:
    """(kind, label, metrics) of every template and ensemble, best top-1 first."""
    rows = [("template", t["template"], t) for t in zeroshot["templates"].values()]
    rows += [("ensemble", f"{key} ({e['num_templates'] or 'per-class'} prompts)", e)
             for key, e in (zeroshot.get("ensembles") or {}).items()]
    return sorted(rows, key=lambda row: -row[2]["top1"])


def plot_prompts(m: dict, figures: Path) -> None:
    rows = prompt_rows(m["zeroshot"])[::-1]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(rows)))
    colors = [ORANGE if kind == "ensemble" else BLUE for kind, _, _ in rows]
    bars = ax.barh(range(len(rows)), [r[2]["top1"] for r in rows], color=colors,
                   hatch=["//" if kind == "ensemble" else "" for kind, _, _ in rows])
    ax.bar_label(bars, fmt="%.4f", padding=3, fontsize=8)
    ax.set_yticks(range(len(rows)), [shorten(label) for _, label, _ in rows], fontsize=8)
    ax.axvline(m["zeroshot"]["chance_top1"], color="red", linestyle="--", label="chance")
    ax.bar(0, 0, color=BLUE, label="single template"), ax.bar(0, 0, color=ORANGE, hatch="//", label="ensemble")
    ax.set(xlim=(0, 1.12), xlabel="zero-shot top-1 (cosine)", title="Zero-shot top-1 per prompt")
    ax.legend(loc="lower right", fontsize=8)
    save(fig, figures, "prompts")


def plot_similarity(m: dict, figures: Path) -> None:
    s = m["similarity"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.arange(2)
    for offset, (key, label, color) in ((-0.2, ("cosine", "cosine", BLUE)), (0.2, ("dot", "dot product", ORANGE))):
        bars = left.bar(x + offset, [s[key]["top1"], s[key]["macro_f1"]], 0.4, label=label, color=color)
        left.bar_label(bars, fmt="%.4f", fontsize=8)
    left.set_xticks(x, ["top-1", "macro-F1"])
    left.set(ylim=(0, 1.22), title=f"Cosine vs dot product ({s['template']})")
    left.legend(loc="upper center", ncol=2, fontsize=8)
    for y, (key, color) in enumerate((("image_norms", GREY), ("text_norms", BLUE))):
        n = s[key]
        right.plot([n["min"], n["max"]], [y, y], color=color, marker="|", markersize=14)
        right.errorbar(n["mean"], y, xerr=n["std"], fmt="o", color=color, capsize=6, linewidth=3)
        right.annotate(f"{n['min']:.2f} | {n['mean']:.2f} ± {n['std']:.2f} | {n['max']:.2f}", (n["mean"], y + 0.18),
                       ha="center", fontsize=8)
    right.set_yticks([0, 1], ["image", "class text"])
    right.set(ylim=(-0.5, 1.6), xlabel="L2 norm (min | mean ± std | max)", title="Embedding norms")
    save(fig, figures, "similarity")


def plot_probe_curve(m: dict, figures: Path) -> None:
    curve = m["probe_curve"]
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [c["epoch"] for c in curve]
    ax.plot(epochs, [c["top1"] for c in curve], marker=".", color=BLUE, label="probe top-1")
    ax.plot(epochs, [c["macro_f1"] for c in curve], marker="x", linestyle=":", color=GREEN, label="probe macro-F1")
    ax.axhline(m["zeroshot"]["best_top1"], color=ORANGE, linestyle="--", label="zero-shot top-1 (best template)")
    if m["logreg"]:
        ax.axhline(m["logreg"]["top1"], color=GREY, linestyle=":", label="logreg probe top-1")
    ax.set(xlabel="epoch", ylabel="test score", title="Linear probe (torch) per epoch")
    ax.legend(fontsize=8)
    save(fig, figures, "probe_curve")


def plot_logreg_sweep(m: dict, figures: Path) -> None:
    sweep, chosen = m["logreg_sweep"], m["logreg"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["log10_C"] for r in sweep], [r["val_top1"] for r in sweep], marker="o", color=BLUE)
    ax.axvline(np.log10(chosen["C"]), color=ORANGE, linestyle="--", label=f"chosen C = {chosen['C']:.4g}")
    ax.plot(np.log10(chosen["C"]), chosen["val_top1"], marker="*", markersize=16, color=ORANGE)
    ax.set(xlabel="log10 C (inverse L2 regularisation)", ylabel="validation top-1",
           title="Logistic regression: C sweep")
    ax.legend(fontsize=8)
    save(fig, figures, "logreg_sweep")


def plot_fewshot(m: dict, figures: Path) -> None:
    zeroshot, curve = m["zeroshot"], m["fewshot"]["curve"]
    k = [c["k"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(k, [c["min_top1"] for c in curve], [c["max_top1"] for c in curve], color=BLUE, alpha=0.2,
                    label="min-max over runs")
    ax.plot(k, [c["mean_top1"] for c in curve], marker="o", color=BLUE, label="logreg probe, mean top-1")
    ax.axhline(zeroshot["best_top1"], color=ORANGE, linestyle="--",
               label=f"zero-shot ({shorten(zeroshot['best_template'])})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(k, [f"{c['k']}\n{c['label']}" if c["label"] == "all" else str(c["k"]) for c in curve])
    ax.minorticks_off()
    ax.set(xlabel="labelled images per class (k)", ylabel="test top-1", title="Few-shot probe against zero-shot")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, figures, "fewshot")


def plot_confusion(m: dict, figures: Path) -> None:
    errors, names = m["errors"], m["errors"]["names"]
    chosen = list(dict.fromkeys(n for p in errors["pairs"]["zeroshot"] for n in (p["actual"], p["predicted"])))[:10]
    idx = [names.index(n) for n in chosen]
    sub = errors["matrices"]["zeroshot"][np.ix_(idx, idx)].astype(float)
    off = np.where(np.eye(len(idx), dtype=bool) | (sub == 0), np.nan, sub)  # white: none, grey: correct
    fig, ax = plt.subplots(figsize=(2.5 + 0.55 * len(idx), 1.5 + 0.5 * len(idx)))
    ax.imshow(np.eye(len(idx)), cmap="Greys", vmax=6)  # light grey diagonal (correct)
    vmax = max(np.nan_to_num(off).max(), 1)
    image = ax.imshow(off, cmap="Reds", vmin=0, vmax=vmax)
    for (i, j), count in np.ndenumerate(sub):
        if count:
            ax.text(j, i, int(count), ha="center", va="center", fontsize=8,
                    color="white" if i != j and count > 0.6 * vmax else "black")
    ax.set_xticks(range(len(idx)), chosen, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(idx)), chosen, fontsize=8)
    ax.set(xlabel="predicted (grey: correct)", ylabel="actual",
           title="Zero-shot confusions among the most confused classes")
    fig.colorbar(image, ax=ax, label="mistakes")
    save(fig, figures, "confusion")


def plot_per_class(m: dict, figures: Path) -> None:
    worst, held_out = m["errors"]["worst"], held_out_classes(m)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(worst)))
    y = np.arange(len(worst))[::-1]
    for offset, (key, label), color in zip((0.2, -0.2), CLASSIFIERS, (ORANGE, BLUE)):
        if worst[0][key] is not None:
            ax.barh(y + offset, [row[key] for row in worst], 0.4, color=color, label=label)
    ax.set_yticks(y, [row["class"] + (" *" if row["class"] in held_out else "") for row in worst], fontsize=8)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set(xlim=(0, 1.25), title=f"The {len(worst)} worst classes of zero-shot",
           xlabel="per-class accuracy (recall)" + ("; * held out of pretraining" if held_out else ""))
    ax.legend(fontsize=8, loc="lower right")
    save(fig, figures, "per_class")


def held_out_classes(m: dict) -> set[str]:
    """The demo's classes held out of pretraining (none without heldout.json)."""
    return set(m["heldout"]["held_out_classes"]) if m["heldout"] else set()


def analyse_errors(m: dict) -> dict | None:
    """Confusion matrices, most confused pairs and per-class accuracy from the confusion files."""
    rows = {key: m[f"confusion_{key}"] for key, _ in CLASSIFIERS if m[f"confusion_{key}"]}
    if not rows:
        return None
    names = sorted({r[side] for data in rows.values() for r in data for side in ("actual", "predicted")})
    index = {name: i for i, name in enumerate(names)}
    arrays = {key: (np.array([index[r["actual"]] for r in data]), np.array([index[r["predicted"]] for r in data]))
              for key, data in rows.items()}
    accuracy = {key: per_class_accuracy(*a, len(names)) for key, a in arrays.items()}
    per_class = [{"class": name, **{key: round(float(accuracy[key][index[name]]), 6) if key in accuracy else None
                                    for key, _ in CLASSIFIERS}}
                 for name in sorted({r["actual"] for data in rows.values() for r in data})]
    ranked = sorted(per_class, key=lambda r: (1 if r["zeroshot"] is None else r["zeroshot"], r["class"]))
    return {"names": names, "per_class": per_class, "worst": ranked[:15],
            "pairs": {key: most_confused_pairs(*a, names) for key, a in arrays.items()},
            "matrices": {key: confusion_matrix(*a, len(names)) for key, a in arrays.items()}}


def build_report(m: dict, drawn: set[str], rel: str) -> str:
    """The markdown report from the loaded metrics (None: file missing) and the names of the figures drawn."""
    z, s, probe, lr, few, held, errors = (m[k] for k in ("zeroshot", "similarity", "probe", "logreg", "fewshot",
                                                         "heldout", "errors"))
    img = lambda name, alt: f"![{alt}]({rel}/{name}.png)\n" if name in drawn else ""  # noqa: E731
    scores = lambda r: [r.get(key) for key, _ in METRICS]  # noqa: E731
    cols = [label for _, label in METRICS]
    best = z["templates"][z["best"]]
    ens_key, ens = max((z.get("ensembles") or {}).items(), key=lambda kv: kv[1]["top1"], default=(None, None))
    zs_name, zs = (f"ensemble `{ens_key}`", ens) if ens and ens["top1"] > best["top1"] else ("best template", best)
    k = overtaking_k(few["curve"], z["best_top1"]) if few else None  # as the summary stage compares

    head = [[f"zero-shot, best template `{best['template']}`", *scores(best), 0]]
    head += [[f"zero-shot, best ensemble `{ens_key}`", *scores(ens), 0]] if ens else []
    head += [["zero-shot, raw dot product, same template", *scores(s["dot"]), 0],
             [f"linear probe (torch, {probe['epochs']} epochs)", *scores({**m["probe_curve"][-1], **probe}),
              probe["num_train_images"]]]
    head += [[f"logistic-regression probe (C = {lr['C']:.4g})", *scores(lr), lr["num_train_images"]]] if lr else []
    out = ["# CLIP study report\n",
           f"{z['num_classes']} classes, {z['num_test_images']} test images (the same for every classifier); "
           f"chance top-1 = 1/{z['num_classes']} = {z['chance_top1']:.4f}.\n",
           "## 1. Headline\n", table(["classifier", *cols, "labelled images"], head), not lr and missing("logreg")]

    out += ["## 2. Prompts\n", img("prompts", "zero-shot top-1 per prompt"),
            table(["kind", "prompt", *cols], [[kind, f"`{label}`", *scores(r)] for kind, label, r in prompt_rows(z)]),
            not ens and "_No prompt ensembles in `zeroshot.json`: the zeroshot stage adds them (`zeroshot.ensembles`)._\n"]

    text, image = s["text_norms"], s["image_norms"]
    out += ["## 3. Cosine vs dot product\n", img("similarity", "cosine vs dot product and embedding norms"),
            table(["similarity", *cols, "classes predicted"],
                  [[key, *scores(s[key]), s[key].get("predicted_classes")] for key in ("cosine", "dot")]),
            f"With `{s['template']}`, cosine scores {s['cosine']['top1'] - s['dot']['top1']:+.4f} top-1 against the "
            "raw dot product. Scaling an image embedding never changes how it ranks the classes, so the image norms "
            f"({image['min']:.4f}-{image['max']:.4f}) play no part; the difference comes from the class text norms "
            f"({text['min']:.4f}-{text['max']:.4f}, std {text['std']:.4f}): under the dot product, classes with "
            "longer text vectors win more often. Correlation between a class's text norm and how often the dot "
            f"product predicts it: {s['dot_predictions_vs_text_norm_corr']:.4f}.\n"]

    out += ["## 4. Linear probe\n", img("probe_curve", "probe learning curve"),
            f"Torch probe (the study's protocol: Adam, {probe['epochs']} epochs): final top-1 {fmt(probe['top1'])}; "
            f"best {fmt(probe['best_top1'])} at epoch {probe['best_epoch']}, optimistic (picked on the test set).\n"]
    out += [img("logreg_sweep", "logreg C sweep"),
            f"Logistic regression (the CLIP paper's protocol): C swept over {len(m['logreg_sweep'])} values on a "
            f"validation split, chosen C = {lr['C']:.4g} (validation top-1 {fmt(lr['val_top1'])}), refit on all "
            f"{lr['num_train_images']} training images: test top-1 {fmt(lr['top1'])}.\n"
            ] if lr and m["logreg_sweep"] else [missing("logreg_sweep" if lr else "logreg")]

    out.append("## 5. Few-shot\n")
    out += [img("fewshot", "few-shot curve"),
            table(["k", "runs", "mean top-1", "std", "min", "max"],
                  [[f"all ({c['k']})" if c["label"] == "all" else c["label"], c["runs"],
                    *(c[f"{stat}_top1"] for stat in ("mean", "std", "min", "max"))] for c in few["curve"]]),
            f"Zero-shot (best template `{best['template']}`) scores {fmt(best['top1'])}: "
            + (f"the probe overtakes zero-shot at k = {k} labelled images per class ({k * few['num_classes']} "
               "labelled images in all).\n" if k is not None else
               f"the probe does not overtake zero-shot at any k measured (up to k = {few['curve'][-1]['k']}).\n")
            ] if few else [missing("fewshot")]

    out += ["## 6. Errors\n"] + [missing(f"confusion_{key}") for key, _ in CLASSIFIERS if not m[f"confusion_{key}"]]
    for key, label in CLASSIFIERS[:2] if errors else ():
        if key in errors["pairs"]:
            pairs = [[p["actual"], p["predicted"], p["count"]] for p in errors["pairs"][key]]
            out.append(f"Most confused pairs, {label}:\n\n" + (table(["actual", "predicted as", "images"], pairs)
                                                               if pairs else "none: every test image is right.\n"))
    if errors and "zeroshot" in errors["pairs"]:
        out += [img("confusion", "zero-shot confusion matrix"), img("per_class", "worst classes"),
                f"Per-class accuracy of the {len(errors['worst'])} worst classes of zero-shot (all classes in "
                "`per_class.json`; the class list is the sorted union of the names in the confusion files):\n\n"
                + table(["class", *(label for _, label in CLASSIFIERS)],
                        [[r["class"] + (" (held out)" if r["class"] in held_out_classes(m) else ""),
                          *(r[key] for key, _ in CLASSIFIERS)] for r in errors["worst"]])]

    out.append("## 7. Held-out combinations\n")
    out += [f"Zero-shot top-1 on the classes seen in pretraining and on the {len(held['held_out_classes'])} held "
            f"out of it ({', '.join(held['held_out_classes'])}); chance {held['chance_top1']:.4f}.\n",
            table(["prompt", "seen top-1", "held-out top-1"],
                  [[f"`{t['template']}`", t["seen_top1"], t["held_out_top1"]] for t in held["templates"].values()]
                  + [[f"best template, {key}", held[key]["seen_top1"], held[key]["held_out_top1"]]
                     for key in ("cosine", "dot")])] if held else [missing("heldout")]

    out += ["## 8. Zero-shot or probe?\n",
            f"- **Labelled data**: zero-shot none; the full probe {probe['num_train_images']} images "
            f"({probe['num_train_images'] // z['num_classes']} per class)"
            + (f"; the few-shot probe overtakes zero-shot (best template) from k = {k} per class "
               f"({k * z['num_classes']} images)" if k else "") + ".",
            f"- **Accuracy** (top-1): zero-shot {fmt(zs['top1'])} ({zs_name}); torch probe {fmt(probe['top1'])} "
            f"({probe['top1'] - zs['top1']:+.4f})"
            + (f"; logreg probe {fmt(lr['top1'])} ({lr['top1'] - zs['top1']:+.4f})" if lr else "") + ".",
            f"- **Flexibility**: zero-shot classified these {z['num_classes']} classes from their names alone and "
            "takes a new class by its name; a probe needs labelled images of every new class and a new training run.",
            f"- **Cost**: zero-shot encodes {z['num_classes']} classes x "
            f"{(ens['num_templates'] or 'per-class') if zs is ens else 1} prompt(s) once; the torch probe trains "
            f"{probe['epochs']} epochs over {probe['num_train_images']} cached image features"
            + (f", the logreg probe makes {len(m['logreg_sweep'])} sweep fits and a refit" if lr and m["logreg_sweep"]
               else "") + "; the metrics files record no wall times.\n"]
    return "\n".join(part for part in out if part)


def main() -> None:
    args = parse_args(__doc__, {"metrics_dir": "metrics", "out": "metrics/report.md", "figures": "metrics/figures",
                                "per_class": "metrics/per_class.json"})
    metrics_dir, figures, out = Path(args.metrics_dir), Path(args.figures), Path(args.out)
    m = {name: read_json(metrics_dir / f"{name}.json") for name in REQUIRED}
    m |= {name: read_json(metrics_dir / f"{name}.json") if (metrics_dir / f"{name}.json").is_file() else None
          for name in OPTIONAL}
    m["errors"] = errors = analyse_errors(m)
    plots = {plot_prompts: True, plot_similarity: True, plot_probe_curve: True,
             plot_logreg_sweep: bool(m["logreg"] and m["logreg_sweep"]), plot_fewshot: bool(m["fewshot"]),
             plot_confusion: bool(errors and errors["pairs"].get("zeroshot")),
             plot_per_class: bool(errors and "zeroshot" in errors["pairs"])}
    figures.mkdir(parents=True, exist_ok=True)
    drawn = set()
    for plot, wanted in plots.items():
        name = plot.__name__.removeprefix("plot_")
        (figures / f"{name}.png").unlink(missing_ok=True)  # a figure whose input has gone must not linger
        if wanted:
            plot(m, figures)
            drawn.add(name)
    rel = Path(os.path.relpath(figures.resolve(), out.resolve().parent)).as_posix()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(m, drawn, rel))
    write_json(args.per_class, errors["per_class"] if errors else [])
    print(f"report: {out}, {len(drawn)} figures in {figures}, per-class accuracy in {args.per_class}")


if __name__ == "__main__":
    run(main)
