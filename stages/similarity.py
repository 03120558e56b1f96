"""Stage similarity: cosine similarity against the raw dot product, with the zero-shot classifier chosen
by the zeroshot stage, each with its bootstrap interval, and the two compared on the same test images.

Scaling an image embedding never changes how it ranks the classes, so any difference comes from
the class text embeddings' norms: classes with longer text vectors win the dot product more often.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clip_study.data.features import load_features
from clip_study.evaluation.intervals import compared
from clip_study.evaluation.metrics import scored, spread
from clip_study.evaluation.similarity import similarity_scores
from clip_study.files import load_npz, read_json, write_json
from clip_study.metrics_files.scores import PairedTest, Scores, Spread
from clip_study.metrics_files.similarity import DotProductResult, SimilarityMetrics, SimilarityResult
from clip_study.metrics_files.zeroshot import ZeroshotMetrics
from clip_study.pipeline.evaluation import bootstrap_settings
from clip_study.pipeline.params import load_params
from clip_study.pipeline.sections.evaluation import EVALUATION
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"features": REQUIRED, "zeroshot": REQUIRED, "zeroshot_metrics": REQUIRED,
                                "metrics": REQUIRED}, argv)
    best = ZeroshotMetrics.from_json(read_json(args.zeroshot_metrics, fix=rebuild("zeroshot"))).best
    text_features = load_npz(Path(args.zeroshot) / "text_features.npz", fix=rebuild("zeroshot"))[best]
    image_features, labels = load_features(Path(args.features) / "test.npz", rebuild("extract"), len(text_features))

    bootstrap = bootstrap_settings(load_params(args.params, EVALUATION))
    tested, predicted = {}, {}
    for metric in ("cosine", "dot"):
        scores = similarity_scores(image_features, text_features, metric)
        tested[metric], predicted[metric] = Scores(**scored(labels, scores, bootstrap)), scores.argmax(axis=1)
    cosine = SimilarityResult(test=tested["cosine"], predicted_classes=int(len(np.unique(predicted["cosine"]))))
    dot = DotProductResult(test=tested["dot"], predicted_classes=int(len(np.unique(predicted["dot"]))),
                           vs_cosine=PairedTest(**compared(predicted["dot"] == labels, predicted["cosine"] == labels)))
    text_norms = np.linalg.norm(text_features, axis=1)
    dot_wins = np.bincount(similarity_scores(image_features, text_features, "dot").argmax(axis=1),
                           minlength=len(text_norms))
    write_json(args.metrics, SimilarityMetrics(
        template=best, num_classes=len(text_norms), cosine=cosine, dot=dot,
        text_norms=Spread(**spread(text_norms)),
        image_norms=Spread(**spread(np.linalg.norm(image_features, axis=1))),
        # > 0: the dot product predicts classes with longer text embeddings more often
        dot_predictions_vs_text_norm_corr=round(float(np.corrcoef(text_norms, dot_wins)[0, 1]), 6)
        if dot_wins.std() > 0 else 0.0,
    ).to_json())
    print(f"similarity: cosine {cosine.test.top1:.4f} vs dot {dot.test.top1:.4f} top-1: dot "
          f"{dot.vs_cosine.verdict}")


if __name__ == "__main__":
    run(main)
