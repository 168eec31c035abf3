import numpy as np
import pytest

from adtag.metrics import gap_at_k, gap_ranked, hit_at_1, mean_ap, per_tag_ap

# The worked example: truth a={x,y}, b={z}; scores a: x .9, z .8, y .3; b: z .7, x .6
TAGS = ["x", "y", "z"]
S = np.array([[0.9, 0.3, 0.8], [0.6, 0.0, 0.7]])
T = np.array([[1, 1, 0], [0, 0, 1]])
RANKED = {"a": [("x", 0.9), ("z", 0.8), ("y", 0.3)], "b": [("z", 0.7), ("x", 0.6)]}
TRUTH = {"a": ["x", "y"], "b": ["z"]}


def test_gap_worked_example():
    assert gap_at_k(S, T, 20) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-5)
    assert gap_at_k(S, T, 20) == pytest.approx(0.75556, abs=1e-5)
    assert gap_at_k(S, T, 1) == pytest.approx(0.66667, abs=1e-5)


def test_gap_ranked_matches_matrix_form():
    assert gap_ranked(RANKED, TRUTH, 20) == pytest.approx(gap_at_k(S, T, 20))
    assert gap_ranked(RANKED, TRUTH, 1) == pytest.approx(gap_at_k(S, T, 1))


def test_gap_counts_true_pairs_beyond_k():
    # 3 true tags, k=1: a perfect top-1 still only recovers 1/3 of the true pairs
    s = np.array([[0.9, 0.8, 0.7, 0.1]])
    t = np.array([[1, 1, 1, 0]])
    assert gap_at_k(s, t, 1) == pytest.approx(1 / 3)
    # a missing item's true tags still count in M
    assert gap_ranked({"a": [("x", 1.0)]}, {"a": ["x"], "b": ["y"]}, 20) == pytest.approx(0.5)


def test_gap_perfect_and_reversed():
    rng = np.random.default_rng(0)
    t = (rng.random((50, 8)) < 0.3).astype(int)
    t[t.sum(1) == 0, 0] = 1
    assert gap_at_k(t + 0.01 * rng.random(t.shape), t) == pytest.approx(1.0)
    assert gap_at_k(-t.astype(float), t) < 0.6


def test_hit_at_1_and_map():
    assert hit_at_1(S, T) == 1.0
    assert hit_at_1(np.array([[0.1, 0.9, 0.0]]), np.array([[1, 0, 0]])) == 0.0
    ap = per_tag_ap(S, T)
    assert ap[0] == pytest.approx(1.0) and ap[1] == pytest.approx(1.0) and ap[2] == pytest.approx(0.5)
    assert mean_ap(S, T) == pytest.approx(2.5 / 3)
