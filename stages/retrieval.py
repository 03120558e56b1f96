"""Stage retrieval: zero-shot retrieval on a caption dataset by one model, both ways, from the image embeddings
(extract) and the caption embeddings (embed_captions), by cosine similarity.

``image_to_text``: each image is a query over every caption, right when any of its own captions comes back;
``text_to_image``: each caption is a query over every image, right when its image comes back (CLIP_benchmark calls
these text retrieval and image retrieval). Recall@k (``retrieval.recall_at``), mean and median rank of the first
right result, each with a bootstrap interval over images (an image resampled with every caption it has). The score
matrix is never held whole: it is scored a tile at a time, on ``model.device``. ``--ranks`` keeps every query's rank,
for the leaderboard's paired comparisons of models on the same queries; ``--figure`` shows a few queries of each
direction with their top five results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.captions import read_captions
from clip_study.data.features import load_features
from clip_study.data.subset import read_split
from clip_study.errors import BadFileError
from clip_study.evaluation.retrieval import evaluate_retrieval, rank_all, top_k
from clip_study.files import write_json
from clip_study.metrics_files.retrieval import Direction, RetrievalMetrics
from clip_study.metrics_files.scores import IntervalSettings
from clip_study.models.loading import pick_device
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import for_param, load_params, model_entry, named_entry, section
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.sections.model import MODEL
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.sections.retrieval import RETRIEVAL
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run
from clip_study.reporting.retrieval_figure import example_queries, plot_retrieval_examples

EXAMPLES = 4  # queries of each direction in the figure
SHOWN = 5     # results shown per query


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "image_features": REQUIRED, "text_features": REQUIRED,
                                "out": REQUIRED, "ranks": REQUIRED, "figure": REQUIRED},
                      argv, per_model=True, per_caption_set=True)
    params = load_params(args.params, MODELS, CAPTIONS, MODEL, RETRIEVAL, EVALUATION)
    short, _, _ = model_entry(params, args.model)
    caption_set, _ = named_entry(params, "captions", args.captions)
    settings, bootstrap = section(params, "retrieval"), bootstrap_settings(params)
    paths, _ = read_split(args.subset, "test", fix=rebuild("fetch_captions"))
    captions = [caption for image in read_captions(args.subset, fix=rebuild("fetch_captions")) for caption in image]
    image_features, image_labels = load_features(args.image_features, rebuild("extract_captions"))
    text_features, text_image = load_features(args.text_features, rebuild("embed_captions"))
    if not np.array_equal(image_labels, np.arange(len(paths))):
        raise BadFileError(args.image_features, f"holds {len(image_labels)} images, not the subset's {len(paths)} in "
                                                "order", rebuild("extract_captions"))
    if len(text_image) != len(captions):
        raise BadFileError(args.text_features, f"holds {len(text_image)} captions, not the subset's {len(captions)}",
                           rebuild("embed_captions"))
    with for_param("model.device"):
        device = pick_device(str(section(params, "model")["device"]))

    ranks = rank_all(image_features, text_features, text_image, device=device)
    ranks.save(Path(args.ranks))
    results = evaluate_retrieval(ranks, list(settings["recall_at"]), bootstrap)
    metrics = RetrievalMetrics(
        model=short, caption_set=caption_set, template=settings["template"], images=len(paths),
        captions=len(captions), image_to_text=Direction.from_json(results["image_to_text"]),
        text_to_image=Direction.from_json(results["text_to_image"]),
        intervals=IntervalSettings(confidence=bootstrap.confidence, resamples=bootstrap.resamples,
                                   stratified_by="image"))
    write_json(args.out, metrics.to_json())

    image_queries, text_queries = example_queries(len(paths), text_image, EXAMPLES, bootstrap.seed)
    shown = min(SHOWN, len(paths))
    image_top, _ = top_k(image_features[image_queries], text_features, shown, device=device)
    text_top, _ = top_k(text_features[text_queries], image_features, shown, device=device)
    plot_retrieval_examples(paths, captions, text_image, image_queries, image_top, text_queries, text_top,
                            Path(args.figure), f"{short} on {caption_set}: top {shown} results")
    line = ", ".join(f"{direction.replace('_', ' ')} R@{k.removeprefix('recall@')} {estimate.value:.3f}"
                     for direction, result in (("image_to_text", metrics.image_to_text),
                                               ("text_to_image", metrics.text_to_image))
                     for k, estimate in result.recall.items())
    print(f"retrieval {short} on {caption_set}: {len(paths)} images, {len(captions)} captions: {line} -> {args.out}")


if __name__ == "__main__":
    run(main)
