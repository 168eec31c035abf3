"""New items are scored as the out-of-fold items were.

1. A branch's fold models meet their held-out rows as they meet new items: the featurizer is fitted on
   every training item, so a fold's held-out rows are part of the statistics that standardise them
   while a new item is not; each fold model standardises its dense input again on its own training
   rows and takes that into its weights.
2. The fusion is fitted on out-of-fold meta-features, each item's from one fold model per branch; a
   new item is scored K times, pass k with every branch's fold-k model, and the K fusion outputs are
   averaged (``Tagger.meta_features(items, passes=True)``, ``Tagger.predict_proba``)."""

import numpy as np
import pytest

from adtag.data.manifest import load_manifest
from adtag.featurize import DenseFeaturizer
from adtag.models.branch import BranchSpec, fit_branch_fold, make_folds
from adtag.models.meta_features import MetaFeatures
from adtag.models.tagger import Tagger, TrainConfig
from tests.conftest import fold_after_fold, make_manifest


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
    a, _ = fold_after_fold(BranchSpec("v", "lr"), X, Y, present, folds)
    b, _ = fold_after_fold(BranchSpec("v", "lr"), other, Y, present, folds)
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_out_of_fold_scores_are_distributed_like_new_items():
    """The fusion learns from out-of-fold scores and meets the fold models' scores of new items:
    their means must agree. With the featurizer's statistics alone, the MLP branch gave its held-out rows a
    mean score of 0.48 and new items 0.41 here (tag rate 0.33); fold-standardised, 0.405 and 0.404."""
    X, Y, Xn = standardised(120, 400)
    oof, models = fold_after_fold(BranchSpec("v", "mlp"), X, Y, np.ones(len(X), bool), make_folds(len(X), 5, 0))
    assert abs(oof.mean() - np.mean([m.predict_proba(Xn).mean() for m in models])) < 0.02


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """A default tagger (stack fusion) trained on generated items, with those items."""
    items = load_manifest(make_manifest(tmp_path_factory.mktemp("kpass"), n=120, seed=3))
    return Tagger(TrainConfig(folds=3, jobs=1)).fit(items, progress=False, log=lambda *_: None), items


def test_pass_k_scores_each_training_item_as_its_out_of_fold_meta_features(stacked):
    """Pass k scores every item with each branch's fold-k model, so a training item held out by fold k
    gets in pass k exactly the meta-features the fusion was fitted on (and other values in other passes)."""
    tagger, items = stacked
    passes = tagger.meta_features(items, passes=True)
    oof, folds = tagger.meta_features_, make_folds(len(items), tagger.config.folds, tagger.config.seed)
    assert len(passes) == len(folds) == 3
    for k, (_, va) in enumerate(folds):
        on = oof.present[va]  # the fusion reads only a present branch's scores
        np.testing.assert_allclose(passes[k].P[va][on], oof.P[va][on], atol=1e-4)
        other = passes[(k + 1) % len(folds)].P[va][on]
        learned = [b for b, n in enumerate(oof.branches) if not n.startswith("scores")]
        assert np.abs(other - oof.P[va][on]).max() > 0.05 and learned
    np.testing.assert_allclose(tagger.meta_features(items).P, np.mean([p.P for p in passes], 0), atol=1e-6)


def test_new_items_get_the_average_of_the_fusion_over_the_passes(stacked):
    """The fusion is applied to each pass (every branch's fold-k model, built here from the fold models
    themselves) and its outputs averaged, not applied once to the fold models' average, which it never
    met in training (less spread than any single fold model's scores)."""
    tagger, items = stacked
    specs, inputs, present, extras = tagger._branch_inputs(tagger.features(items[:40]))
    names = [s.name for s in specs]

    def fold(k: int) -> MetaFeatures:
        P = np.stack([tagger.branches_[s.name][k].predict_proba(inputs(s)) for s in specs], axis=1)
        return MetaFeatures(P, present, names, extras)

    want = np.mean([tagger.fusion_.predict_proba(fold(k)) for k in range(tagger.config.folds)], axis=0)
    got = tagger.predict_proba(items[:40])
    np.testing.assert_allclose(got, want, atol=1e-5)
    mean = MetaFeatures(np.mean([fold(k).P for k in range(tagger.config.folds)], axis=0), present, names, extras)
    assert np.abs(got - tagger.fusion_.predict_proba(mean)).max() > 1e-3  # the two rules differ here


def test_explanations_show_the_scores_new_items_get(stacked):
    """``explain_items`` (adtag tag, the service) reports the K-pass scores, and each branch's
    probability is the passes' mean."""
    from adtag.tagging import explain_items

    tagger, items = stacked
    (rows,) = explain_items(tagger, items[:1], 3)
    scores, mean = tagger.predict_proba(items[:1])[0], tagger.meta_features(items[:1])
    for row in rows:
        j = tagger.vocab_.index[row.tag]
        assert row.score == pytest.approx(float(scores[j]), abs=1e-6)
        for name, share in row.branches.items():
            assert share.probability == pytest.approx(float(mean.P[0, mean.branches.index(name), j]), abs=1e-6)


def test_above_the_size_limit_new_items_get_one_pass_on_the_mean(stacked, monkeypatch):
    """A system trained on more than ``Tagger.PASSES_UP_TO`` items scores new items once, on the fold
    models' mean (fold models agree there, and K fusion passes cost ~3x the prediction CPU)."""
    tagger, items = stacked
    monkeypatch.setattr(Tagger, "PASSES_UP_TO", len(items) - 1)
    (one,) = tagger.meta_features(items[:30], passes=True)
    np.testing.assert_allclose(one.P, tagger.meta_features(items[:30]).P, atol=1e-6)
    np.testing.assert_allclose(tagger.predict_proba(items[:30]), tagger.fusion_.predict_proba(one), atol=1e-6)
