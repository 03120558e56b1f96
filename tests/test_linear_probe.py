"""The study's linear probe (one nn.Linear, Adam): it learns, the same seed gives the same scores, and the layer it
yields gives the scores it yields."""

import numpy as np

from clip_study.evaluation import linear_probe


def test_probe_learns_a_separable_problem_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    train_y, test_y = rng.integers(0, 4, 400), rng.integers(0, 4, 100)
    train_x = (centres[train_y] + rng.normal(size=(400, 16))).astype(np.float32)
    test_x = (centres[test_y] + rng.normal(size=(100, 16))).astype(np.float32)
    run = lambda: list(linear_probe.train_linear_probe(train_x, train_y, test_x, 4, epochs=5, lr=0.05,
                                                   batch_size=32, weight_decay=0.0, seed=0))
    history = run()
    assert [epoch for epoch, *_ in history] == [1, 2, 3, 4, 5]
    assert history[-1][1] < history[0][1]  # the loss falls
    assert (history[-1][2].argmax(1) == test_y).mean() == 1.0
    np.testing.assert_array_equal(history[-1][2], run()[-1][2])
    for _, _, scores, head in history:  # each epoch's own layer, copied (training went on after it)
        assert not head.normalize and head.weights.shape == (4, 16) and head.bias.shape == (4,)
        np.testing.assert_allclose(head.logits(test_x), scores, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(head.predict(test_x), scores.argmax(axis=1))
    assert not np.array_equal(history[0][3].weights, history[-1][3].weights)
