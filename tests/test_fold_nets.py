"""A branch's K fold MLPs trained in lockstep as one batched network (``FoldNets``, ``fit_fold_nets``):
each fold model learns what it learns fitted alone (its own initialisation, hold-out, minibatch order,
early stopping and best epoch) but for dropout's random draws."""

import numpy as np
import pytest
import torch

from adtag.metrics import gap_at_k
from adtag.models.branch import BRANCH_MODELS, BranchSpec, fit_branch_fold, fit_branch_folds, make_folds
from adtag.models.meta_features import fit_meta_features
from adtag.models.mlp import MLPTagger
from adtag.models.nn import FoldAdam, FoldNets
from tests.conftest import fold_after_fold


def tags(n: int = 200, d: int = 12, L: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)).astype(np.float32)
    Y = (X - X.mean(0)) / X.std(0) @ rng.normal(size=(d, L)) / 2 + rng.normal(size=(n, L)) > 1.0
    return X, Y.astype(np.float32)


@pytest.fixture
def no_dropout(monkeypatch):
    """An MLP branch model without dropout: the one random draw the batched fit makes differently."""
    monkeypatch.setitem(BRANCH_MODELS, "mlp0", (MLPTagger, {"dropout": 0.0, "hidden": 64, "lr": 1e-2}))
    return BranchSpec("v", "mlp0")


def test_batched_folds_learn_what_each_fold_learns_alone(no_dropout):
    X, Y = tags()
    folds = make_folds(len(X), 5, 0)
    present = np.ones(len(X), bool)
    present[folds[4][1][:12]] = False  # folds 1-4 train on 126 rows (one batch an epoch), fold 5 on 136 (two)
    alone = [fit_branch_fold(no_dropout, X, Y, present, folds, 7, k) for k in range(5)]
    (together,) = fit_branch_folds([no_dropout], [X], Y, present[:, None], folds, 7)
    for (p, a), (q, b) in zip(alone, together, strict=True):
        np.testing.assert_allclose(q, p, atol=1e-4)  # held-out rows
        np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-4)  # raw input (absorbed scaling)
        assert b.epochs_ == a.epochs_
    epochs = [b.epochs_ for _, b in together]
    assert len(set(epochs)) > 2 and min(epochs) < MLPTagger().max_epochs  # each fold stopped at its own epoch


def test_batched_folds_with_dropout_score_as_well():
    """With dropout the random draws differ, what is learned does not: the same out-of-fold GAP."""
    X, Y = tags(n=300, d=20, L=12, seed=1)
    folds, present, spec = make_folds(len(X), 5, 0), np.ones(len(X), bool), BranchSpec("v", "mlp")
    oof_alone, _ = fold_after_fold(spec, X, Y, present, folds)
    (together,) = fit_branch_folds([spec], [X], Y, present[:, None], folds, 0)
    oof = np.zeros_like(oof_alone)
    for (_, va), (p, _) in zip(folds, together, strict=True):
        oof[va] = p
    assert abs(gap_at_k(oof, Y) - gap_at_k(oof_alone, Y)) < 0.02
    assert np.abs(oof - oof_alone).max() > 1e-3  # other dropout draws: not the same numbers


def test_fit_meta_features_fits_mlp_branches_of_one_width_as_one_job(no_dropout):
    """The MLP branches of one input width train as one batched network, one job beside the LR branch's
    later folds; each branch's out-of-fold scores are those of its folds fitted one after the other."""
    X, Y = tags()
    X2 = (X[:, ::-1] * 2 + 1).copy()
    folds, present = make_folds(len(X), 4, 0), np.ones((len(X), 3), bool)
    present[::7, 1] = False  # one modality missing on some items: its folds train on fewer rows
    specs, calls = [no_dropout, BranchSpec("w", "mlp0"), BranchSpec("v", "lr")], []
    inputs = {"v": X, "w": X2}

    def job(fn, args) -> object:  # a job's branch model (a list of them: one job for several branches)
        fn, args = (args[0], args[1:]) if fn.__name__ == "_job" else (fn, args)
        return [s.model for s in args[0]] if fn.__name__ == "fit_branch_folds" else args[0].model

    def map_fn(fn, jobs):
        calls.append([job(fn, args) for args in jobs])
        return [fn(*args) for args in jobs]

    mf, models = fit_meta_features(
        specs, lambda s: inputs[s.modality], present, Y, folds, np.zeros((len(X), 0)), map_fn=map_fn
    )
    assert calls == [["lr"], [["mlp0", "mlp0"], "lr", "lr", "lr"]]  # both MLP branches' 4 folds: one job
    for b, spec in enumerate(specs[:2]):
        oof, _ = fold_after_fold(spec, inputs[spec.modality], Y, present[:, b], folds)
        np.testing.assert_allclose(mf.P[:, b], oof, atol=1e-4)
        assert len(models[spec.name]) == 4 and all(isinstance(m, MLPTagger) for m in models[spec.name])


def test_fold_adam_steps_only_the_active_folds_as_torch_adam_would():
    torch.manual_seed(0)
    nets = FoldNets([torch.nn.Sequential(torch.nn.Linear(3, 2)) for _ in range(2)])
    alone = [torch.nn.Parameter(nets.flat[g].clone()) for g in range(2)]
    adams = [torch.optim.Adam([p], lr=0.01, weight_decay=1e-4, fused=True) for p in alone]
    fold_adam = FoldAdam(nets, lr=0.01, weight_decay=1e-4)
    for active in ([True, True], [True, False], [False, False], [True, True]):
        grad = torch.randn(2, nets.flat.shape[1])
        nets.grad.copy_(grad)
        fold_adam.step(np.array(active))
        for g in np.flatnonzero(active):
            alone[g].grad = grad[g].clone()
            adams[g].step()
    for g in range(2):  # fold 1 took two steps, fold 0 three: each matches Adam with its own count
        torch.testing.assert_close(nets.flat[g], alone[g].detach(), rtol=0, atol=1e-7)
