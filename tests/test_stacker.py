"""The stacker's chain on its own: one input falls back to itself, the paper's network trains in the
same lockstep loop, and models saved by an older adtag still load and predict the same."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adtag.metrics import gap_at_k
from adtag.models import stacker
from adtag.models.base import from_record, to_record
from adtag.models.meta_features import MetaFeatures
from adtag.models.stacker import LR, Stacker, _branch_sum


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
    assert st.chosen_ == "net" and st.net_.body[0].weight.shape[0] == 3 and np.isfinite(st.holdout_gap_)
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
    st.net_.linear_only = False  # an old model had no probability average: as if its weights were zero
    st.net_.alpha_p.data.zero_()
    st.net_.scale_p.data.zero_()
    arrays, record = to_record(st)
    old_arrays = {k: v for k, v in arrays.items() if not k.endswith((".alpha_p", ".scale_p"))}
    record["meta"] = {"shape": record["meta"]["shape"], "holdout_gap": record["meta"]["holdout_gap"]}
    again = from_record(json.loads(json.dumps(record)), old_arrays)
    assert again.chosen_ == "net" and again.cv_gap_ == {}
    test = _mf(P[300:])
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)


def test_a_stacker_saved_one_net_per_bag_loads_and_predicts_the_same():
    """Before the fold nets were batched, a model folder held one nn.Linear-shaped set of arrays per
    fold net (``bag{g}.tagwise.0.weight``: (out, in), ``bag{g}.scale``: (1,), ...). Built by hand here
    from a fitted model, one bag at a time, that layout loads and predicts as the fitted model does,
    and is what ``state`` still writes."""
    P, Y = _scores(400, [1.0, 2.0, 3.0], seed=4)
    st = Stacker(n_bags=2, max_epochs=5, seed=0).fit(_mf(P[:300]), Y[:300])
    st.chosen_, st.net_.linear_only = "net", False  # every part of the fold nets in use
    stacked = {k: v.detach().numpy() for k, v in st.net_.state_dict().items()}
    G = stacked["alpha"].shape[0]
    old = {f"bag{g}.{k}": v[g].copy() for k, v in stacked.items() for g in range(G)}
    assert G == 6 and old["bag0.scale"].shape == (1,) and old["bag0.bias"].shape == (20,)
    assert old["bag5.tagwise.0.weight"].shape == (16, 2 * 3 + 7) and old["bag5.wide.4.weight"].shape == (20, 128)
    arrays, record = to_record(st)
    assert set(arrays) == set(old)
    record = json.loads(json.dumps(record))
    again, test = from_record(record, old), _mf(P[300:])
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)
    # Each bag alone is a fold net of its own; the model predicts with their average logit.
    alone = [
        from_record(record, {"bag0." + k.split(".", 1)[1]: v for k, v in old.items() if k.startswith(f"bag{g}.")})
        for g in range(G)
    ]
    mean_logit = np.mean([one.decision_function(test) for one in alone], axis=0)
    np.testing.assert_allclose(again.decision_function(test), mean_logit, atol=1e-5)
    # The averaging part of one bag, by hand: s * sum_b softmax(alpha)_b z_b + s_p * sum_b softmax(alpha_p)_b p_b + c.
    alone[1].chosen_, alone[1].net_.linear_only = "linear", True
    z = np.log(np.clip(P[300:], 1e-4, 1 - 1e-4) / (1 - np.clip(P[300:], 1e-4, 1 - 1e-4)))
    w, w_p = (np.exp(old[f"bag1.{a}"]) / np.exp(old[f"bag1.{a}"]).sum() for a in ("alpha", "alpha_p"))
    by_hand = old["bag1.scale"] * np.einsum("k,nkl->nl", w, z) + old["bag1.bias"]
    by_hand = by_hand + old["bag1.scale_p"] * np.einsum("k,nkl->nl", w_p, 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(alone[1].decision_function(test), by_hand, atol=1e-4)


def test_the_linear_rung_fitted_for_all_folds_at_once_is_each_fold_fitted_alone():
    """One L-BFGS on the sum of the folds' losses reaches each fold's own fit (within 0.002 measured), the
    padding of a short fold weighing nothing (its repeated rows counted would move its biases by ~0.09)."""
    import torch

    from adtag.models.stacker import _fit_linear, _tensors

    P, Y = _scores(300, [1.0, 2.0, 3.0], seed=6)
    data, yt = _tensors(P, np.ones((300, 3), bool), np.zeros((300, 0)), False), torch.from_numpy(Y)
    rows = [np.flatnonzero(np.arange(300) % 3 != f) for f in range(3)] + [np.arange(170)]
    st = Stacker()
    st.shape_ = (3, 20, 0)
    together = _fit_linear(st._build(len(rows)), data, yt, rows, 1 / 300)
    for g, r in enumerate(rows):
        alone = _fit_linear(st._build(1), data, yt, [r], 1 / 300)
        for name in ("alpha", "scale", "bias", "alpha_p", "scale_p"):
            a, b = getattr(together, name)[g].detach().numpy(), getattr(alone, name)[0].detach().numpy()
            np.testing.assert_allclose(a, b, atol=0.01, err_msg=f"fold {g}: {name}")


def test_above_blend_min_the_paper_network_joins_the_chain_and_round_trips(monkeypatch):
    """Thousands of items: the paper's network trains on the chain's own internal folds, the blend
    rung is scored on their averaged out-of-fold logits, and a blended model saves and loads."""
    from adtag.models import stacker

    P, Y = _scores(3300, [1.6, 2.0, 2.4], L=8, seed=5)
    monkeypatch.setattr(stacker, "MARGIN", {"linear": 1.0, "net": 1.0, "blend": 0.0})  # the blend, over the mean
    st = Stacker(max_epochs=4, seed=0).fit(_mf(P[:3100]), Y[:3100])
    assert st.chosen_ == "blend" and set(st.cv_gap_) == {"mean", "linear", "net", "blend"}, st.cv_gap_
    assert st.paper_.net_.body[0].weight.shape[0] == 2  # the chain's two internal folds
    test = _mf(P[3100:])
    blended = st.decision_function(test)
    st.chosen_ = "net"  # the chain's own nets alone
    chain, st.chosen_ = st.decision_function(test), "blend"
    np.testing.assert_allclose((chain + st.paper_.decision_function(test)) / 2, blended, atol=1e-5)
    assert gap_at_k(st.predict_proba(test), Y[3100:]) > gap_at_k(P[3100:, 2], Y[3100:])  # beats the worst input
    arrays, record = to_record(st)
    assert any(k.startswith("paper.bag1.") for k in arrays)
    again = from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)
    # below BLEND_MIN nothing of the paper's is trained or kept
    small = Stacker(max_epochs=4, seed=0).fit(_mf(P[:600]), Y[:600])
    assert small.paper_ is None and "blend" not in small.cv_gap_


def test_one_input_re_ranked_is_reported_on_the_inputs_own_scale_and_round_trips():
    """A single 0/1-heavy input (a tree model's votes) whose tags a per-tag bias corrects: the learned
    rung wins, and its logits come out on the input's scale (same quantiles on the training items,
    the ends of the votes included), in the learned rung's own order; saved and loaded, the same; a
    model saved before the map existed predicts the learned rung's logits as they were."""
    from adtag.models.stacker import to_logits

    P, Y = _scores(700, [2.0], seed=7, offset=3.0)
    P = np.where(P > 0.9, 1.0, np.where(P < 0.1, 0.0, np.round(P * 20) / 20)).astype(np.float32)
    st = Stacker(max_epochs=20, seed=0).fit(_mf(P[:400]), Y[:400])
    assert st.chosen_ != "mean" and st.scale_.shape == (2, 201), st.cv_gap_
    q = np.linspace(0.05, 0.95, 19)
    train, test = st.decision_function(_mf(P[:400])), _mf(P[400:])
    np.testing.assert_allclose(np.quantile(train, q), np.quantile(to_logits(P[:400, 0]), q), atol=0.05)
    mapped, m = st.decision_function(test), st.scale_
    st.scale_ = None  # the learned rung's logits as the fold nets give them: another scale, the same order
    unmapped, st.scale_ = st.decision_function(test), m
    assert np.abs(np.quantile(unmapped, q) - np.quantile(to_logits(P[400:, 0]), q)).max() > 1.0
    assert np.all(np.diff(mapped.ravel()[np.argsort(unmapped.ravel(), kind="stable")]) >= 0)
    assert abs(gap_at_k(mapped, Y[400:]) - gap_at_k(unmapped, Y[400:])) < 1e-3  # (float32 ties at the ends)
    arrays, record = to_record(st)
    again = from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_allclose(again.predict_proba(test), st.predict_proba(test), atol=1e-6)
    old = from_record(json.loads(json.dumps(record)), {k: v for k, v in arrays.items() if k != "input_scale"})
    np.testing.assert_allclose(old.decision_function(test), unmapped, atol=1e-5)


def test_the_blend_rungs_network_stops_early_only_where_the_blend_cannot_win():
    """The paper's network in the chain stops once its average with the net rung has stayed far below the
    net rung's GAP for patience epochs; where the average keeps up, it trains exactly as without the gate."""
    P, Y = _scores(600, [1.6, 2.0, 2.4], L=8, seed=5)
    mf, free = _mf(P), Stacker("paper", n_bags=2, max_epochs=20, patience=3, seed=0).fit(_mf(P), Y)
    assert free.epochs_ == 20  # (it improves to the end here)
    hopeless = (1.0, -free.oof_)  # a "net rung" at GAP 1.0 whose logits the paper's network cannot help
    gated = Stacker("paper", n_bags=2, max_epochs=20, patience=3, seed=0).fit(mf, Y, hopeless)
    assert gated.epochs_ == 3
    level = (0.0, free.oof_)  # a net rung the blend easily stays above: no early stop, the same weights
    kept = Stacker("paper", n_bags=2, max_epochs=20, patience=3, seed=0).fit(mf, Y, level)
    assert kept.epochs_ == 20 and np.array_equal(kept.oof_, free.oof_)


def test_the_paper_network_takes_its_learning_rate_and_epochs_from_its_options():
    """``lr`` and ``max_epochs`` reach the paper's network (its learning rate was fixed at 1e-3); without
    ``lr`` each kind keeps its own default (``LR``)."""
    P, Y = _scores(160, [1.6, 1.6], seed=4)
    mf = _mf(P)

    def paper(**kw) -> Stacker:
        return Stacker("paper", n_bags=2, patience=100, seed=0, **{"max_epochs": 3, **kw}).fit(mf, Y)

    default, same, faster, frozen = paper(), paper(lr=LR["paper"]), paper(lr=3e-3), paper(lr=0.0)
    assert default.epochs_ == 3 and paper(max_epochs=5).epochs_ == 5
    np.testing.assert_array_equal(default.decision_function(mf), same.decision_function(mf))
    assert np.abs(faster.decision_function(mf) - default.decision_function(mf)).max() > 1e-3
    fresh = Stacker("paper", seed=0)
    fresh.shape_ = frozen.shape_
    for p, q in zip(fresh._build(2).parameters(), frozen.net_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # learning rate 0: the networks never moved
    # the chain's net rung: 3e-3 unless told
    chain = [Stacker(n_bags=2, max_epochs=3, rung="net", seed=0, lr=lr).fit(mf, Y) for lr in (None, LR["stack"], 1e-2)]
    np.testing.assert_array_equal(chain[0].decision_function(mf), chain[1].decision_function(mf))
    assert np.abs(chain[2].decision_function(mf) - chain[0].decision_function(mf)).max() > 1e-3


@pytest.mark.parametrize("shape", [(10, 320, 2, 82), (1, 400, 2, 82), (4, 64, 3, 82), (4, 64, 4, 82), (3, 7, 1, 163)])
def test_the_branch_sum_of_few_branches_is_einsums(shape):
    """A few branches: the product-and-sum form gives einsum's numbers, forward and gradient (to the last bit
    with this machine's MKL, which adds so few terms in order; within float rounding with any BLAS)."""
    gen = torch.Generator().manual_seed(0)
    z, a, g = (
        torch.randn(shape, generator=gen) * 3,
        torch.randn(shape[:3], generator=gen),
        torch.randn(shape[:2] + shape[3:]),
    )
    outs = []
    for fn in (_branch_sum, lambda w, x: torch.einsum("gbk,gbkl->gbl", w, x)):
        leaf = a.clone().requires_grad_()
        out = fn(torch.softmax(leaf, -1), z)
        (out * g).sum().backward()
        outs.append((out.detach(), leaf.grad))
    for mine, theirs in zip(*outs, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6)


def test_a_stacker_over_few_branches_is_the_same_with_einsum(monkeypatch):
    """The whole chain (L-BFGS linear rung, net rung, early stopping) over 2 branches: the same predictions
    whether the branch sums run as products and sums or as einsum."""
    P, Y = _scores(200, [1.0, 2.0], seed=5)
    mf = _mf(P)
    ours = Stacker(n_bags=2, max_epochs=4, rung="net", seed=0).fit(mf, Y)
    monkeypatch.setattr(stacker, "_branch_sum", lambda w, z: torch.einsum("gbk,gbkl->gbl", w, z))
    theirs = Stacker(n_bags=2, max_epochs=4, rung="net", seed=0).fit(mf, Y)
    assert ours.cv_gap_ == pytest.approx(theirs.cv_gap_, abs=1e-4)
    np.testing.assert_allclose(ours.decision_function(mf), theirs.decision_function(mf), atol=1e-4)


def test_without_a_net_the_internal_folds_only_choose_the_rung():
    """``max_epochs=0`` (the ablation's Table 1): the linear rung is refitted on every item, so 2 internal folds
    give the same stacker as 5 where they choose the same rung."""
    P, Y = _scores(300, [1.0, 2.5], seed=6)
    train, test = _mf(P[:200]), _mf(P[200:])
    five, two = (Stacker(max_epochs=0, n_bags=k, seed=0).fit(train, Y[:200]) for k in (5, 2))
    assert five.chosen_ == two.chosen_ == "linear", (five.cv_gap_, two.cv_gap_)
    assert five.cv_gap_ != two.cv_gap_  # other internal folds, other out-of-fold scores
    np.testing.assert_array_equal(five.decision_function(test), two.decision_function(test))
