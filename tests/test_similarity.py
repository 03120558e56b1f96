"""Similarity scoring: cosine ranks classes by angle alone, the dot product by angle and text norm."""

import numpy as np

from clip_study.evaluation import similarity


def test_cosine_ignores_norms_dot_does_not():
    text = np.array([[1.0, 0.0], [0.0, 3.0]])  # class 1 has the longer text vector
    image = np.array([[2.0, 1.5]])             # closer in angle to class 0
    assert similarity.similarity_scores(image, text, "cosine").argmax() == 0
    assert similarity.similarity_scores(image, text, "dot").argmax() == 1
    # scaling the image never changes either ranking
    for metric in ("cosine", "dot"):
        assert similarity.similarity_scores(10 * image, text, metric).argmax() == \
            similarity.similarity_scores(image, text, metric).argmax()
    np.testing.assert_allclose(similarity.similarity_scores(image, text, "cosine"),
                               [[2 / 2.5, 1.5 / 2.5]])
