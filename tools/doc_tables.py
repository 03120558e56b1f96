"""The docs' generated tables, each read from the file that holds its figures (``python -m tools.sync``).

- README.md, ``demo-results``: the offline demo's models x datasets, from ``demo/metrics/leaderboard.json`` and
  each pair's committed metrics files (``demo/metrics/models/<model>/<dataset>/``).
- docs/performance.md, ``bench-extract``, ``bench-fetch``, ``bench-ray``, ``bench-retrieval``: the benchmarks'
  figures, from the result files they write (``bench/results.json``, ``bench/fetch_results.json``,
  ``bench/ray_results.json``, ``bench/retrieval_results.json``), each with the machine and date the file records,
  and saying so where it records none.

Plain JSON in, markdown out: nothing here imports torch, so ``python -m tools.sync --check`` runs in a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.sync import replace_between

ROOT = Path(__file__).resolve().parents[1]

# The benchmarks' targets as bench/benchmark.py's report() prints them (a result file that records its own
# "targets" wins): (b)/(a), (b)/(c) and (d)/(b) ratios, the stage's start-up on top of (b), (f) and (g).
EXTRACT_TARGETS = {"b/a": 0.9, "b/c": 1.0, "d/b": 1.6, "stage_extra_s": 8.0, "probe_s": 3.0, "memory_ratio": 1.25,
                   "sweep_ratio": 0.10, "int8_top1_difference": 0.01}
GPU_EXTRACT_TARGETS = {"b/c": 4.0, "b_images_per_second": {"500x375": 1500, "64x64": 4000}, "stage_extra_s": 8.0,
                       "probe_s": 3.0, "memory_ratio": 1.25}
DATE_KEYS = ("measured",)  # what the benches write: the UTC time of the run
MACHINE_KEYS = ("cpu",)  # what the benches write


def read_json(root: Path, path: str) -> Any:
    return json.loads((root / path).read_text())


def number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def interval(result: dict[str, float]) -> str:
    return f"{number(result['top1'])} [{number(result['top1_low'])}, {number(result['top1_high'])}]"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {describe(item)}" for key, item in value.items())
    return str(value)


def provenance(data: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    """Where and when a result file says it was measured, in words; what it does not record, said so."""
    named = [describe(data[key]) for key in MACHINE_KEYS if data.get(key)]
    details = ([f"{data['cores']} cores"] if "cores" in data else []) + [f"{key} {data[key]}" for key in extra
                                                                        if data.get(key)]
    where = (", ".join(named + details) if named
             else "not recorded" + (f" ({', '.join(details)})" if details else ""))
    when = next((describe(data[key]) for key in DATE_KEYS if data.get(key)), None)
    note = f" ({data['measured_note']})" if data.get("measured_note") else ""
    return f"machine: {where}; date: {when or 'not recorded'}{note}"


# -- README: the demo's results ---------------------------------------------------------------------------

CLASSIFIERS = {"zeroshot": "zero-shot", "probe": "linear probe", "logreg": "logistic probe"}
"""The leaderboard's classifiers (its PairRow and AcrossDatasets keys), as the README's table names them."""


def rank(low_high: dict[str, float], key: str) -> str:
    return f"{low_high[key]:.2f} [{low_high[f'{key}_low']:.2f}, {low_high[f'{key}_high']:.2f}]"


def verdicts(comparison: dict[str, dict[str, Any]]) -> str:
    """One model's paired tests against a dataset's leader, classifier by classifier, in a few words."""
    found = {kind: test["verdict"] for kind, test in comparison.items()}
    if len(set(found.values())) == 1:
        return f"{next(iter(found.values()))}, all three"
    return "; ".join(f"{CLASSIFIERS.get(kind, kind)} {verdict}" for kind, verdict in found.items())


def demo_results(root: Path = ROOT) -> str:
    """The demo's leaderboard (``metrics/leaderboard.json``, ``clip_study/metrics_files/leaderboard.py``) as a
    models x datasets table of the three classifiers' test top-1 with each model's mean and average rank over the
    datasets, then per dataset its test set, its leader and the paired tests against it, the held-out classes
    where the dataset has them, and each pair's report."""
    folder = "demo/metrics"
    board = read_json(root, f"{folder}/leaderboard.json")
    datasets = list(board["datasets"])
    confidence = round(100 * board["interval"]["confidence"])
    columns = ["classifier", "model", *datasets,
               f"mean [{confidence} % interval]", f"average rank [{confidence} % interval]"]
    rows = []
    for kind, label in CLASSIFIERS.items():
        for entry in board["models"]:
            cells = [label, entry["model"]]
            cells += [interval(entry["datasets"][dataset][kind]) for dataset in datasets]  # top-1s inline
            across = entry["across_datasets"][kind]
            cells += [f"{number(across['mean_top1'])} [{number(across['mean_top1_low'])}, "
                      f"{number(across['mean_top1_high'])}]", rank(across, "average_rank")]
            rows.append(cells)
    head = (f"Test top-1 with its {confidence} % interval, from [`{folder}/leaderboard.json`]({folder}/leaderboard.json) "
            f"(the front page: [`{folder}/report.md`]({folder}/report.md)). Zero-shot is the classifier chosen on each "
            f"dataset's train images; the mean weighs each dataset the same; the average rank ranks the models on "
            f"each dataset (1: the best) and averages the ranks; both have paired bootstrap intervals. Leader: "
            f"**{board['leader']}** (best zero-shot average rank).")
    sets = []
    for dataset in datasets:
        info = board["datasets"][dataset]
        leader = info["leader"]
        zeroshot = read_json(root, f"{folder}/models/{leader}/{dataset}/zeroshot.json")
        against = "<br>".join(f"{model}: {verdicts(comparison)}" for model, comparison in info["vs_leader"].items())
        held = {}
        for entry in board["models"]:
            path = root / folder / "models" / entry["model"] / dataset / "heldout.json"
            if path.exists():
                record = json.loads(path.read_text())  # the chosen classifier's top-1 (null: none held out)
                if record["cosine"]["held_out_top1"] is not None:
                    held[entry["model"]] = (len(record["held_out_classes"]), record["cosine"]["held_out_top1"])
        counts = sorted({count for count, _ in held.values()})
        reports = ", ".join(f"[{entry['model']}]({folder}/models/{entry['model']}/{dataset}/report.md)"
                            for entry in board["models"])
        sets.append([f"{dataset}", str(info["num_classes"]), str(info["num_test_images"]),
                     number(zeroshot["chance_top1"]), leader, against or "-",
                     (", ".join(f"{model} {number(top1)}" for model, (_, top1) in held.items())
                      + f" ({'/'.join(map(str, counts))} classes)") if held else "-", reports])
    datasets_table = table(["dataset", "classes", "test images", "chance top-1", "leader (zero-shot)",
                            "against the leader (McNemar)", "zero-shot on the held-out classes", "reports"], sets)
    return "\n".join([head, "", table(columns, rows), "", datasets_table])


def readme(text: str, root: Path = ROOT) -> str:
    return replace_between(text, "demo-results", demo_results(root))


def table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


# -- docs/performance.md: the benchmarks ---------------------------------------------------------------------

def extract_bench(data: dict[str, Any], path: str) -> str:
    gpu = data.get("device", "cpu") != "cpu"
    targets = {**(GPU_EXTRACT_TARGETS if gpu else EXTRACT_TARGETS), **data.get("targets", {})}
    sizes = list(data["extraction"])
    load = max((r["other_processes_cores"] for size in sizes for r in data["extraction"][size].get("load", [])),
               default=None)
    first = data["extraction"][sizes[0]]
    setup = (f"{first['images']} images per variant and round, {first['rounds']} rounds round-robin, batch "
             f"{first['batch_size']}, {first['threads']} threads, {first['workers']} decoding workers")
    lines = [f"From [`{path}`](../{path}): {provenance(data, ('device', 'torch'))}; {setup}"
             + (f"; other processes used at most {load} cores during the rounds" if load is not None else "")
             + (f"; the run took {data['bench_seconds']:.0f} s." if "bench_seconds" in data else "."), ""]

    def per_size(cell) -> list[str]:
        return [cell(size, data["extraction"][size]) for size in sizes]

    def rate(key: str, ratio: str | None = None, at_least: float | None = None):
        """A variant's images/s, with one of its ratios and whether it meets its target."""
        def cell(size, ex) -> str:
            text = f"{ex['images_per_second'][key]:.2f} images/s"
            if ratio:
                value = ex["ratios"][ratio]
                text += f" ({ratio} {value:.3f}" + (f", {met(value >= at_least)})" if at_least else ")")
            return text
        return cell

    def stage(size, ex) -> str:
        run, b_seconds = data["stage"][size], ex["images"] / ex["images_per_second"]["b_extraction"]
        extra = run["seconds"] - b_seconds
        limit = targets.get("stage_extra_s")
        return (f"{run['seconds']:.1f} s: (b)'s {b_seconds:.1f} s + {extra:.1f} s"
                + (f" ({met(extra <= limit)})" if limit else "") + f"; peak {run['peak_mb']:,} MB")

    rows = [["(a) the stage's encoder on ready uint8 tensors (the ceiling)", *per_size(rate("a_forward_only")), ""]]
    if gpu:
        need = targets.get("b_images_per_second", {})
        rows.append(["(b) `extract`'s path from image files",
                     *per_size(lambda size, ex: f"{ex['images_per_second']['b_extraction']:.0f} images/s"
                               + (f" ({met(ex['images_per_second']['b_extraction'] >= need[size])})"
                                  if size in need else "")),
                     ", ".join(f">= {v} images/s on {k}" for k, v in need.items())])
    else:
        rows.append(["(b) `extract`'s path from image files", *per_size(rate("b_extraction", "b/a", targets["b/a"])),
                     f"b/a >= {targets['b/a']}"])
    rows.append(["(c) a notebook loop: PIL open, `CLIPImageProcessor`, model, per batch",
                 *per_size(rate("c_notebook_loop", "b/c", targets["b/c"])), f"b/c >= {targets['b/c']}"])
    if any("d_extraction_int8" in data["extraction"][size]["images_per_second"] for size in sizes):
        rows.append(["(d) `extract` with `precision: int8`",
                     *per_size(rate("d_extraction_int8", "d/b", targets.get("d/b"))),
                     f"d/b >= {targets['d/b']}" if "d/b" in targets else ""])
    rows.append([f"(s) `python -m stages.extract` on {first['images']} images, start-up included", *per_size(stage),
                 f"(b) + at most {targets['stage_extra_s']:.0f} s"])
    lines.append(table(["figure", *[f"{size} JPEGs" for size in sizes], "target"], rows))
    lines.append("")
    probe, memory = data.get("probe"), data.get("memory")
    others = []
    if "demo_sweep" in data:
        e = data["demo_sweep"]
        limit = targets.get("sweep_ratio")
        others.append(f"(e) a template-only `dvc exp run` on the demo: {e['template_only_exp_run_seconds']} s against "
                      f"{e['full_repro_without_pretraining_seconds']} s for the full run without pretraining, "
                      f"{e['ratio']:.3f}" + (f" (target <= {limit}: {met(e['ratio'] <= limit)})" if limit else ""))
    else:
        others.append("(e) the demo's template sweep and int8 on the demo's model: not in this file (the benchmark "
                      "measures them unless run with `--skip-demo`)")
    if "int8_on_demo" in data:
        d = data["int8_on_demo"]
        limit, worst = targets.get("int8_top1_difference"), d["max_abs_top1_difference_over_templates"]
        others.append(f"int8 on the demo's model: feature cosine to fp32 mean {d['cosine_mean']} (min "
                      f"{d['cosine_min']}), top-1 of `{d['best_template']}` {d['top1_fp32']} (fp32) against "
                      f"{d['top1_int8']} (int8), at most {worst} apart over the templates"
                      + (f" (target <= {limit}: {met(worst <= limit)})" if limit else ""))
    if probe:
        limit = targets.get("probe_s")
        others.append(f"(f) the study's probe, {probe['epochs']} epochs on {probe['train_images']:,} x {probe['dim']} "
                      f"features of {probe['classes']} classes: {probe['seconds']} s"
                      + (f" (target <= {limit:.0f} s: {met(probe['seconds'] <= limit)})" if limit else ""))
    if memory:
        limit = targets.get("memory_ratio")
        others.append(f"(g) `extract`'s peak memory on {memory['images_1x']} against {4 * memory['images_1x']} "
                      f"images: {memory['peak_mb_1x']:,} MB against {memory['peak_mb_4x']:,} MB, {memory['ratio']:.3f}"
                      + (f" (target <= {limit}: {met(memory['ratio'] <= limit)})" if limit else ""))
    lines += [f"- {line}" for line in others]
    return "\n".join(lines)


def fetch_bench(data: dict[str, Any], path: str) -> str:
    fetch, single, memory = data["fetch"], data["single_process_decode"], data["memory"]
    targets = data.get("targets", {})
    load = max(v for v in (fetch.get("other_cores_before"), single.get("other_cores_before"),
                           single.get("other_cores")) if v is not None)
    head = (f"From [`{path}`](../{path}), written by `python -m bench.fetch --images {data['images']}`: "
            f"{provenance(data)}; other processes used at most {load} cores around the timed runs; "
            f"{data['images']:,} generated JPEGs of {data['mean_jpeg_kb']} KB on average.")
    time_target, memory_target = targets.get("time_ratio"), targets.get("memory_ratio")
    rows = [
        ["`python -m stages.fetch` on all of them (its start, scan, checks, split and links)",
         f"{fetch['seconds']} s, of which the pooled image checks {fetch['checks_seconds']} s", ""],
        ["the same images decoded with `check_image` in one process", f"{single['seconds']} s", ""],
        ["time: fetch against one process", f"{data['time_ratio']:.3f}",
         f"<= {time_target}: {met(data['time_ratio'] <= time_target)}" if time_target else ""],
        [f"peak memory: {memory['images'][0]:,} against {memory['images'][1]:,} images",
         f"{memory['peak_mb'][0]} MB against {memory['peak_mb'][1]} MB: {memory['ratio']:.3f}",
         f"<= {memory_target}: {met(memory['ratio'] <= memory_target)}" if memory_target else ""],
    ]
    return "\n".join([head, "", table(["figure", "measured", "target"], rows)])


def ray_bench(data: dict[str, Any], path: str) -> str:
    images = data["images"]
    small, large = images["small"], images["large"]
    names = {"local": "local"} | {key: f"Ray, {key.split('_')[1]} actor{'s' if key.split('_')[1] != '1' else ''}"
                                  for key in data["engines"] if key.startswith("ray_")}
    local = data["engines"].get("local", {})
    head = (f"From [`{path}`](../{path}), written by `python -m bench.ray --small {small} --large {large}`: "
            f"{provenance(data, ('gpu', 'ray', 'torch'))}; {images['size']}s"
            + (f"; other processes used {local['other_cores']} cores during the local runs (during the Ray "
               "runs the file's figure counts Ray's own worker processes)" if "other_cores" in local else "")
            + f". `ray.init` of the in-process cluster took {data['ray_init_s']} s, once per stage run.")
    rows = [[names.get(key, key), f"{row['images_per_s']:.1f}", f"{row['fixed_s']:.1f} s", f"{row['small_s']:.1f} s",
             f"{row['large_s']:.1f} s"] for key, row in data["engines"].items()]
    return "\n".join([head, "", table(["engine", "images/s", "fixed cost per run", f"{small} images",
                                       f"{large} images"], rows)])


def retrieval_bench(data: dict[str, Any], path: str) -> str:
    command = "python -m bench.retrieval" + (f" --device {data['device']}" if data["device"] != "cpu" else "")
    load = max(row["other_processes_cores"] for row in data["sizes"])
    head = (f"From [`{path}`](../{path}), written by `{command}`: {provenance(data, ('device', 'torch'))}; "
            f"{data['features']}, D = {data['dim']}; tiles of at most {data['tile_scores']:,} scores; each size in a "
            f"fresh process; other processes used at most {load} cores.")
    rows = [[f"{row['images']:,} x {row['captions']:,}", f"{row['rank_all_seconds']} s",
             f"{row['queries_per_second']:,}", f"{row['inputs_rss_mb']:,} MB", f"{row['peak_rss_mb']:,} MB",
             f"{row['working_mb']:,} MB", f"{row['full_matrix_mb']:,} MB", f"{row['evaluate_seconds']} s"]
            for row in data["sizes"]]
    columns = ["images x captions", "`rank_all`", "queries/s", "RSS with the inputs", "peak RSS",
               "working memory (peak - inputs)", "the full score matrix (float32)",
               f"bootstrap ({data['bootstrap_resamples']:,} resamples)"]
    return "\n".join([head, "", table(columns, rows)])


def performance(text: str, root: Path = ROOT) -> str:
    extract = [extract_bench(read_json(root, path), path) for path in ("bench/results.json", "bench/results_cuda.json")
               if (root / path).exists()]
    if not (root / "bench/results_cuda.json").exists():
        extract.append("No GPU run is recorded (`bench/results_cuda.json`, which `python -m bench.benchmark --device "
                       "cuda` writes, is absent): the GPU targets ((b) >= "
                       + " and >= ".join(f"{v:,} images/s on {k}" for k, v in
                                         GPU_EXTRACT_TARGETS["b_images_per_second"].items())
                       + f", b/c >= {GPU_EXTRACT_TARGETS['b/c']:.0f}) are not measured.")
    text = replace_between(text, "bench-extract", "\n\n".join(extract))
    text = replace_between(text, "bench-fetch", fetch_bench(read_json(root, "bench/fetch_results.json"),
                                                             "bench/fetch_results.json"))
    text = replace_between(text, "bench-ray", ray_bench(read_json(root, "bench/ray_results.json"),
                                                         "bench/ray_results.json"))
    retrieval = [retrieval_bench(read_json(root, path), path) for path in ("bench/retrieval_results.json",
                                                                           "bench/retrieval_results_cuda.json")
                 if (root / path).exists()]
    if not (root / "bench/retrieval_results_cuda.json").exists():
        retrieval.append("No GPU run is recorded (`bench/retrieval_results_cuda.json`, which `python -m "
                         "bench.retrieval --device cuda` writes, is absent).")
    return replace_between(text, "bench-retrieval", "\n\n".join(retrieval))


# -- docs/stages.md: what each stage reads and writes, from dvc.yaml ------------------------------------------

def keys(params: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf key of a params file, dotted."""
    out = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        out += keys(value, f"{name}.") if isinstance(value, dict) and key != "models" else [name]
    return out


# a stage's placeholders as the tables write them: matrix items, and a foreach's key by what it loops over
PLACEHOLDERS = {"${item.model}": "<model>", "${item.dataset}": "<dataset>"}
FOREACH_NAMES = {"${models}": "<model>", "${datasets}": "<dataset>"}


def placeholders(stage: dict[str, Any]) -> dict[str, str]:
    """``${...}`` -> its name in the tables, for one stage of dvc.yaml."""
    return {**PLACEHOLDERS, "${key}": FOREACH_NAMES.get(str(stage.get("foreach")), "<name>")}


def named(text: str, names: dict[str, str]) -> str:
    for placeholder, name in names.items():
        text = text.replace(placeholder, name)
    return text


def params_cell(listed: list[str], all_keys: list[str]) -> str:
    """A stage's params, a whole section as ``section.*`` when the stage reads every key of it."""
    shown, done = [], set()
    for key in listed:
        section = key.split(".", 1)[0]
        if section in done:
            continue
        members = [k for k in all_keys if k.startswith(f"{section}.")]
        if "." in key and len(members) > 1 and all(k in listed for k in members):
            shown.append(f"`{section}.*`")
            done.add(section)
        else:
            shown.append(f"`{key}`")
    return ", ".join(shown) or "none"


def outputs_cell(body: dict[str, Any], names: dict[str, str] | None = None) -> str:
    names = names or placeholders({})
    cells = []
    for kind, label in (("outs", ""), ("metrics", " (metrics)"), ("plots", " (plot)")):
        for out in body.get(kind, []):
            path = out if isinstance(out, str) else next(iter(out))
            if path == "${item.name}":
                cells.append(f"the checkpoint directory named by `models.{names['${key}']}.name`")
                continue
            cells.append(f"`{named(path, names)}`{label}")
    return ", ".join(cells)


def runs_cell(name: str, stage: dict[str, Any]) -> str:
    """How often a stage runs, with the name of one of its runs."""
    if "matrix" in stage:
        axes = [PLACEHOLDERS.get(f"${{item.{axis}}}", f"<{axis}>") for axis in stage["matrix"]]
        runs = f"per {' and '.join(axis.strip('<>') for axis in axes)}: `{name}@{'-'.join(axes)}`"
    elif "foreach" in stage:
        axis = placeholders(stage)["${key}"]
        runs = f"per {axis.strip('<>')}: `{name}@{axis}`"
    else:
        runs = "once"
    return runs + (", at every `dvc repro`" if stage.get("do", stage).get("always_changed") else "")


def stage_rows(dvc_yaml: dict[str, Any], params: dict[str, Any], names: list[str] | None = None) -> list[list[str]]:
    all_keys = keys(params)
    rows = []
    for name, stage in dvc_yaml["stages"].items():
        if names is not None and name not in names:
            continue
        body, words = stage.get("do", stage), placeholders(stage)
        listed = [named(key, words) for key in body.get("params", [])]
        rows.append([f"`{name}`", runs_cell(name, stage), params_cell(listed, all_keys), outputs_cell(body, words)])
    return rows


def stage_tables(root: Path = ROOT) -> tuple[str, str]:
    import yaml

    main = yaml.safe_load((root / "dvc.yaml").read_text())
    demo = yaml.safe_load((root / "demo/dvc.yaml").read_text())
    main_params = yaml.safe_load((root / "params.yaml").read_text())
    demo_params = yaml.safe_load((root / "demo/params.yaml").read_text())
    columns = ["stage", "runs", "params it reads", "writes"]
    def same(name: str) -> bool:
        """Whether the demo's stage reads and writes what the main pipeline's stage of that name does."""
        if name not in main["stages"]:
            return False
        ours, theirs = (stages[name] for stages in (demo["stages"], main["stages"]))
        return (runs_cell(name, ours) == runs_cell(name, theirs)
                and ours.get("do", ours).get("params") == theirs.get("do", theirs).get("params")
                and outputs_cell(ours.get("do", ours)) == outputs_cell(theirs.get("do", theirs)))

    own = [name for name in demo["stages"] if not same(name)]
    shared = [name for name in demo["stages"] if name not in own]
    main_table = "\n".join(["From [`dvc.yaml`](../dvc.yaml) (paths relative to the repository root):", "",
                            table(columns, stage_rows(main, main_params))])
    demo_table = "\n".join([f"From [`demo/dvc.yaml`](../demo/dvc.yaml) (paths relative to `demo/`): the stages "
                            f"the main pipeline does not have, or has with other params or outputs; "
                            f"{', '.join(f'`{n}`' for n in shared)} are as above.", "",
                            table(columns, stage_rows(demo, demo_params, own))])
    return main_table, demo_table


def stages(text: str, root: Path = ROOT) -> str:
    main_table, demo_table = stage_tables(root)
    return replace_between(replace_between(text, "stages-main", main_table), "stages-demo", demo_table)


# -- docs/python.md: what the notebook example prints ---------------------------------------------------------

PYTHON_EXAMPLE = {"a photo of a {}": ("templates", "a_photo_of_a"), "CLIP's 7 templates": ("ensembles", "clip_7")}
PYTHON_PAIR = "clip/shapes"
"""The (model, dataset) pair of docs/python.md's example: ``demo/metrics/models/<model>/<dataset>/``."""


def python_output(text: str, root: Path = ROOT) -> str:
    """The lines the example of docs/python.md prints: the demo's zeroshot stage's numbers for CLIP on shapes,
    the same template and ensemble (tests/test_demo.py runs the example and compares)."""
    zeroshot = read_json(root, f"demo/metrics/models/{PYTHON_PAIR}/zeroshot.json")
    lines = []
    for label, (kind, key) in PYTHON_EXAMPLE.items():
        result = zeroshot[kind][key]
        shown = {name: result[name] for name in ("top1", "top5", "macro_f1", "mean_per_class_recall")}
        lines.append(f"{label}: {shown}")
    return replace_between(text, "python-output", "\n".join(["```", *lines, "```"]))
