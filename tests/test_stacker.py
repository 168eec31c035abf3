"""The stacker's chain on its own: one input falls back to itself, the paper's network trains in the
same lockstep loop, and models saved by an older adtag still load and predict the same."""

from __future__ import annotations

import json

import numpy as np

from adtag.metrics import gap_at_k
from adtag.models.base import from_record, to_record
from adtag.models.meta_features import MetaFeatures
from adtag.models.stacker import Stacker


def _scores(
    n: int, noise: list[float], L: int = 20, seed: int = 0, offset: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One noisy but useful score vector per model and item (probabilities), and the truth;
    ``offset`` scales a per-tag shift of the scores (what a per-tag bias can correct)."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < 0.15).astype(np.float32)
    noise_ = np.asarray(noise)[None, :, None] * rng.normal(size=(n, len(noise), L))
    logit = 2.0 * (2 * Y[:, None] - 1) + noise_ + offset * rng.normal(size=(1, 1, L))
    return (1 / (1 + np.exp(-logit))).astype(np.float32), Y


def _mf(P: np.ndarray) -> MetaFeatures:
    n, B, _ = P.shape
    return MetaFeatures(P, np.ones((n, B), bool), [f"m{b}" for b in range(B)], np.zeros((n, 0), np.float32))


def test_one_input_on_few_items_is_passed_through_as_it_is():
    """Nothing to fuse or correct, 240 items: the chain keeps the scores (the mean rung is the identity)."""
    P, Y = _scores(640, [1.6], seed=3, offset=0.0)
    st = Stacker(seed=0).fit(_mf(P[:240]), Y[:240])
    out = st.predict_proba(_mf(P[240:]))
    assert st.chosen_ == "mean", st.cv_gap_
    np.testing.assert_allclose(out, P[240:, 0], atol=1e-6)


def test_paper_network_trains_in_lockstep_folds_and_round_trips():
    P, Y = _scores(500, [1.6, 1.6, 1.6], seed=1)
    st = Stacker(kind="paper", max_epochs=15, seed=0).fit(_mf(P[:300]), Y[:300])
    assert st.chosen_ == "net" and len(st.nets_) == 3 and np.isfinite(st.holdout_gap_)
    test = _mf(P[300:])
    random = gap_at_k(np.random.default_rng(0).random(Y[300:].shape), Y[300:])
    assert gap_at_k(st.predict_proba(test), Y[300:]) > random + 0.2
    arrays, record = to_record(st)
    again = from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)


def test_a_model_saved_before_the_rungs_and_the_probability_average_still_loads():
    P, Y = _scores(400, [1.0, 3.0, 3.0], seed=2)  # one good model: the weights matter
    st = Stacker(n_bags=2, max_epochs=5, seed=0).fit(_mf(P[:300]), Y[:300])
    assert st.chosen_ != "mean", st.cv_gap_
    st.chosen_ = "net"
    for net in st.nets_:  # an old model had no probability average: as if its weights were zero
        net.linear_only = False
        net.alpha_p.data.zero_()
        net.scale_p.data.zero_()
    arrays, record = to_record(st)
    old_arrays = {k: v for k, v in arrays.items() if not k.endswith((".alpha_p", ".scale_p"))}
    record["meta"] = {"shape": record["meta"]["shape"], "holdout_gap": record["meta"]["holdout_gap"]}
    again = from_record(json.loads(json.dumps(record)), old_arrays)
    assert again.chosen_ == "net" and again.cv_gap_ == {}
    test = _mf(P[300:])
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)
