"""A branch's fold models meet their held-out rows as they meet new items.

The featurizer is fitted on every training item, so a fold's held-out rows are part of the
statistics that standardise them while a new item is not; each fold model standardises its dense
input again on its own training rows (``in_fold_standardise``) and takes that into its weights."""

import numpy as np
import pytest

from adtag.featurize import DenseFeaturizer
from adtag.models.branch import BranchSpec, fit_branch, fit_branch_fold, make_folds, predict_branch


def gaussian_tags(rng, n: int, G: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, G.shape[1])) * G
    Y = (X / G) @ W + rng.normal(size=(n, W.shape[1])) - 1.5 > 0
    return X.astype(np.float32), Y.astype(np.float32)


def standardised(n: int, m: int, d: int = 2000, L: int = 6, seed: int = 0):
    """Many dense columns, few items (the demo corpus's frame embeddings): training items and new ones
    from one distribution, both standardised by a featurizer fitted on the training items."""
    rng = np.random.default_rng(seed)
    W, G = rng.normal(size=(d, L)) / np.sqrt(d) * 3, rng.gamma(2.0, 0.5, size=(1, d))
    (X, Y), (Xn, _) = gaussian_tags(rng, n, G, W), gaussian_tags(rng, m, G, W)
    f = DenseFeaturizer("vector", d).fit(list(X), np.ones(n, bool))
    return f.transform(list(X)), Y, f.transform(list(Xn))


@pytest.mark.parametrize("model", ["lr", "mlp"])
def test_fold_model_takes_the_standardisation_into_its_weights(model):
    X, Y, _ = standardised(100, 0, d=300)
    folds = make_folds(len(X), 5, 0)
    held_out, est = fit_branch_fold(BranchSpec("v", model), X, Y, np.ones(len(X), bool), folds, 0, 0)
    # the model returned scores the raw input as it scored the re-standardised held-out rows
    np.testing.assert_allclose(est.predict_proba(X[folds[0][1]]), held_out, atol=2e-5)


def test_out_of_fold_scores_do_not_depend_on_the_featurizer_statistics():
    """Shifting and scaling every column (what a featurizer fitted on other items would do) leaves the
    out-of-fold scores as they are: each fold model sees only its own rows' statistics."""
    X, Y, _ = standardised(100, 0, d=300)
    rng = np.random.default_rng(1)
    other = (X * rng.uniform(0.5, 2.0, X.shape[1]) + rng.normal(size=X.shape[1])).astype(np.float32)
    folds, present = make_folds(len(X), 5, 0), np.ones(len(X), bool)
    a, _ = fit_branch(BranchSpec("v", "lr"), X, Y, present, folds)
    b, _ = fit_branch(BranchSpec("v", "lr"), other, Y, present, folds)
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_out_of_fold_scores_are_distributed_like_new_items():
    """The stacker learns from out-of-fold scores and is applied to new items' scores: their means
    must agree. With the featurizer's statistics alone, the MLP branch gave its held-out rows a mean
    score of 0.48 and new items 0.41 here (tag rate 0.33); fold-standardised, 0.405 and 0.404."""
    X, Y, Xn = standardised(120, 400)
    oof, models = fit_branch(BranchSpec("v", "mlp"), X, Y, np.ones(len(X), bool), make_folds(len(X), 5, 0))
    assert abs(oof.mean() - predict_branch(models, Xn).mean()) < 0.02


class Fixed:
    """A fold model whose probabilities are given (only ``predict_proba`` is asked of fold models)."""

    def __init__(self, p) -> None:
        self.p = np.asarray(p, dtype=np.float32)

    def predict_proba(self, X) -> np.ndarray:
        return self.p


def test_fold_models_are_averaged_on_the_logit_scale():
    a, b = [[0.99, 0.5, 0.2, 0.9]], [[0.5, 0.5, 0.01, 0.1]]
    got = predict_branch([Fixed(a), Fixed(b)], None)
    logit = lambda p: np.log(np.asarray(p) / (1 - np.asarray(p)))  # noqa: E731
    want = 1 / (1 + np.exp(-(logit(a) + logit(b)) / 2))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[0, 0] > 0.9 > (0.99 + 0.5) / 2  # the mean of probabilities would pull 0.99 down to 0.745
    assert got[0, 3] == pytest.approx(0.5)  # opposite odds cancel


def test_logit_average_keeps_agreeing_models_further_from_one_half():
    """Fold models on the same side of 0.5 average further from 0.5 on the logit scale than as
    probabilities (logit is convex above 0.5, concave below): the spread the stacker learned from."""
    rng = np.random.default_rng(0)
    side = rng.random((50, 8)) < 0.5
    P = [np.where(side, 0.5 + 0.49 * rng.random((50, 8)), 0.5 - 0.49 * rng.random((50, 8))) for _ in range(5)]
    got = predict_branch([Fixed(p) for p in P], None)
    assert np.all(np.abs(got - 0.5) > np.abs(np.mean(P, 0) - 0.5) + 1e-6)


def test_identical_fold_models_pass_their_scores_through():
    """A score modality's fold models all give the same scores: they pass as they are, 0 and 1 too
    (no clipping to the stacker's range)."""
    p = np.array([[0.0, 3e-6, 0.25, 1.0]], np.float32)
    np.testing.assert_array_equal(predict_branch([Fixed(p)] * 5, None), p)
