"""The demo's held-out split of zero-shot top-1: images of seen classes against those of held-out ones."""

import numpy as np

from clip_study.demo.heldout import group_top1


def test_top1_is_split_by_whether_the_true_class_is_held_out():
    labels = np.array([0, 0, 1, 1, 2, 2])
    scores = np.eye(3)[[0, 1, 1, 1, 0, 2]]  # predictions 0 1 1 1 0 2: seen 0,0,1,1 -> 3/4 right; held out 2,2 -> 1/2
    held_out = np.array([False, False, True])
    assert group_top1(labels, scores, held_out) == {"seen_top1": 0.75, "held_out_top1": 0.5}
