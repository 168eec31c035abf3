"""The linear branches' solver: the compact L-BFGS reaches SciPy's optimum, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from adtag.engines.local import run_parallel
from adtag.models.linear import ALPHAS, LinearTagger, _loss_grad
from adtag.optimize import minimize_lbfgs


def test_quadratic_minimum_found():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 30))
    H = A.T @ A + 0.1 * np.eye(30)  # ill-conditioned enough to need curvature pairs
    b = rng.normal(size=30)
    x = minimize_lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(30), max_iter=500, gtol=1e-9, ftol=0)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["log", "hinge"])
def test_multilabel_objective_matches_scipy(loss: str):
    rng = np.random.default_rng(1)
    X = sp.random(300, 200, density=0.05, random_state=2, format="csr", dtype=np.float32)
    Y = (X @ rng.normal(size=(200, 6)) + 0.3 * rng.normal(size=(300, 6)) > 0.2).astype(np.float32)
    alpha, d, L = 1e-2, 200, 6
    ref = minimize(
        lambda w: _loss_grad(w.astype(np.float32), X, Y, alpha, loss, X.T.tocsr()),
        np.zeros(d * L + L),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-14},
    )
    est = LinearTagger(loss=loss, alpha=alpha, max_iter=300).fit(X, Y)
    w = np.concatenate([est.coef_.ravel(), est.intercept_])
    f_ours = _loss_grad(w, X, Y, alpha, loss)[0]
    assert f_ours <= ref.fun * (1 + 1e-4) + 1e-6


@pytest.mark.parametrize("loss", ["log", "hinge"])
def test_sparse_products_in_place_match_dense(loss: str):
    """The sparse path adds both products into its outputs in place (scipy's kernels): the same
    objective and gradient as the dense path, with the starting weights and intercepts non-zero."""
    rng = np.random.default_rng(5)
    X = sp.random(120, 90, density=0.1, random_state=6, format="csr", dtype=np.float32)
    Y = (rng.random((120, 7)) < 0.3).astype(np.float32)
    w = rng.normal(size=90 * 7 + 7).astype(np.float32)
    f_sp, g_sp = _loss_grad(w, X, Y, 1e-2, loss, X.T.tocsr())
    Xd = X.toarray()
    f_de, g_de = _loss_grad(w, Xd, Y, 1e-2, loss, np.ascontiguousarray(Xd.T))
    assert f_sp == pytest.approx(f_de, rel=1e-6)
    np.testing.assert_allclose(g_sp, g_de, rtol=1e-4, atol=1e-6)


def test_column_budget_keeps_the_most_used_columns(monkeypatch):
    """A sparse input wider than MAX_COLUMNS is solved on its most-used columns only; the others
    weigh zero, and the kept columns' weights are those of a fit on just them."""
    from adtag.models import linear

    rng = np.random.default_rng(7)
    X = sp.random(300, 200, density=0.05, random_state=8, format="csr", dtype=np.float32)
    X = sp.csr_matrix(X.multiply(np.linspace(0.02, 1, 200) > rng.random(200)))  # columns used unevenly
    Y = (X @ rng.normal(size=(200, 5)) > 0.05).astype(np.float32)
    monkeypatch.setattr(linear, "MAX_COLUMNS", 120)
    used = np.bincount(X.indices, minlength=200)
    cols = linear._narrow(X)[1]
    assert len(cols) == 120 and used[cols].min() >= np.delete(used, cols).max()
    tr, va = np.arange(240), np.arange(240, 300)
    est = LinearTagger(loss="log").fit_fold(X, Y, tr, va)
    assert est.coef_.shape == (200, 5)
    kept = linear._narrow(X[tr])[1]
    assert not est.coef_[np.setdiff1d(np.arange(200), kept)].any()
    alone = LinearTagger(loss="log").fit_fold(X[:, kept], Y, tr, va)
    assert alone.alpha_ == est.alpha_
    np.testing.assert_allclose(est.predict_proba(X[va]), alone.predict_proba(X[va][:, kept]), atol=1e-6)


def _square(x: int) -> int:
    return x * x


def test_parallel_results_keep_input_order_while_largest_runs_first():
    jobs = [(i,) for i in range(7)]
    # arrays of different sizes: the scheduler starts the largest first, results stay in input order
    sized = [(np.zeros(k),) for k in (5, 50, 1, 500, 20, 2, 100)]
    assert list(run_parallel(_square, jobs, n_jobs=2)) == [i * i for i in range(7)]
    assert [len(r) for r in run_parallel(np.atleast_1d, sized, n_jobs=2)] == [5, 50, 1, 500, 20, 2, 100]


def test_later_folds_as_separate_jobs_give_the_in_process_branch():
    """Fold 1 of every branch, then its later folds as jobs of their own in 2 workers: the same
    out-of-fold probabilities and settings as one branch fitted fold after fold in-process."""
    from adtag.models.branch import BranchSpec, make_folds
    from adtag.models.meta_features import fit_meta_features
    from tests.conftest import fold_after_fold

    rng = np.random.default_rng(3)
    n, L = 200, 8
    X = sp.random(n, 400, density=0.03, format="csr", random_state=4, dtype=np.float32)
    Y = (X @ rng.normal(size=(400, L)) + 0.2 * rng.normal(size=(n, L)) > 0.1).astype(np.float32)
    specs = [BranchSpec("text", "lr"), BranchSpec("text", "svm")]
    present = np.ones((n, 2), bool)
    present[:30, 1] = False  # the SVM branch's modality is missing for some items
    folds = make_folds(n, 4, 0)
    mf, models = fit_meta_features(
        specs, lambda s: X, present, Y, folds, np.zeros((n, 0)), map_fn=lambda fn, jobs: run_parallel(fn, jobs, 2)
    )
    for b, spec in enumerate(specs):
        oof, alone = fold_after_fold(spec, X, Y, present[:, b], folds)
        np.testing.assert_allclose(mf.P[:, b], oof, rtol=0, atol=1e-6)
        assert [m.alpha_ for m in models[spec.name]] == [m.alpha_ for m in alone]
        assert all(m.coef_ is not None for m in models[spec.name])  # settings() copies, never strips the model


def test_featurizing_in_workers_matches_in_process(tmp_path):
    """Training fits the text featurizers as jobs in worker processes (their word splitting is most of
    featurizing): the same vocabularies and matrices as fitted in-process, and as ``features()`` gives."""
    from adtag.data.manifest import read_items
    from adtag.data.modalities import infer_modalities
    from adtag.models.tagger import Tagger, TrainConfig
    from tests.conftest import make_manifest

    items = read_items(make_manifest(tmp_path / "m", n=80, seed=2))
    workers, alone = Tagger(TrainConfig()), Tagger(TrainConfig())
    workers.specs_ = alone.specs_ = infer_modalities(items, None)
    calls = []
    x = workers.features(items, lambda fn, jobs: calls.append(len(jobs)) or run_parallel(fn, jobs, 2))
    y = alone.features(items, lambda fn, jobs: (fn(*j) for j in jobs))
    assert calls == [sum(s.kind == "text" for s in workers.specs_)] and calls[0] >= 1
    again = workers.features(items)
    for a, b, c, spec in zip(x.blocks, y.blocks, again.blocks, workers.specs_, strict=True):
        dense = [m.toarray() if sp.issparse(m) else m for m in (a, b, c)]
        np.testing.assert_array_equal(dense[0], dense[1], err_msg=spec.name)
        np.testing.assert_array_equal(dense[0], dense[2], err_msg=spec.name)
        if spec.kind == "text":
            assert workers.featurizers_[spec.name].vocabulary_ == alone.featurizers_[spec.name].vocabulary_
    assert np.array_equal(x.present, y.present)


def test_callback_stops_the_solve_at_its_check():
    """``callback`` is asked every ``check_every`` iterations; stopping at a check gives the same point as a
    solve cut at that many iterations."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 30))
    H, b = A.T @ A + 0.1 * np.eye(30), rng.normal(size=30)

    def fun(x):
        return 0.5 * x @ H @ x - b @ x, H @ x - b

    asked = []
    x = minimize_lbfgs(
        fun, np.zeros(30), 100, gtol=0, ftol=0, callback=lambda x: asked.append(x) or len(asked) == 2, check_every=5
    )
    assert len(asked) == 2
    np.testing.assert_array_equal(x, minimize_lbfgs(fun, np.zeros(30), 10, gtol=0, ftol=0))


def _path_calls(monkeypatch, est: LinearTagger, X, Y, tr, va) -> list[tuple[float, int]]:
    """(alpha, loss evaluations) per point of the first fold's alpha path."""
    from adtag.models import linear

    calls, evals, solve, loss_grad = [], [0], LinearTagger._solve, linear._loss_grad

    def counted(*a, **k):
        evals[0] += 1
        return loss_grad(*a, **k)

    def solve_counted(self, X, Y, alpha, *a, **k):
        e0 = evals[0]
        w = solve(self, X, Y, alpha, *a, **k)
        calls.append((alpha, evals[0] - e0))
        return w

    monkeypatch.setattr(linear, "_loss_grad", counted)
    monkeypatch.setattr(LinearTagger, "_solve", solve_counted)
    est.fit_fold(X, Y, tr, va)
    monkeypatch.undo()
    return calls


def test_path_point_after_the_best_stops_at_its_first_check(monkeypatch):
    """A path point warm-started from the best one whose validation GAP does not rise by its first check
    (CHECK_EVERY iterations) ends the path there instead of running PATH_ITER iterations: the same alpha."""
    from adtag.models import linear

    rng = np.random.default_rng(0)
    X = sp.random(500, 300, density=0.05, random_state=0, format="csr", dtype=np.float32)
    Y = (X @ rng.normal(size=(300, 8)) + 1.0 * rng.normal(size=(500, 8)) > 0.3).astype(np.float32)
    tr, va = np.arange(350), np.arange(350, 500)
    checked = _path_calls(monkeypatch, est := LinearTagger(loss="hinge"), X, Y, tr, va)
    monkeypatch.setattr(linear, "CHECK_EVERY", 10**9)
    full = _path_calls(monkeypatch, alone := LinearTagger(loss="hinge"), X, Y, tr, va)
    best = ALPHAS.index(est.alpha_)
    assert est.alpha_ == alone.alpha_ and len(checked) == len(full) == best + 2  # the point after the best is worse
    assert checked[-1][1] <= linear.CHECK_EVERY + 3 < full[-1][1]  # stopped at its first check (+ line searches)
    assert sum(e for _, e in checked) < sum(e for _, e in full)


@pytest.mark.parametrize("loss", ["log", "hinge"])
def test_path_runs_to_the_weakest_alpha_while_gap_rises(loss: str):
    """Noise-free labels: validation GAP keeps rising as regularisation weakens, and the early checks do not
    cut the path short: the weakest alpha is chosen."""
    rng = np.random.default_rng(0)
    X = sp.random(1500, 100, density=0.05, random_state=1, format="csr", dtype=np.float32)
    Y = (X @ rng.normal(size=(100, 6)) > 0.3).astype(np.float32)  # 15 items a feature: converged, no overfit
    est = LinearTagger(loss=loss).fit_fold(X, Y, np.arange(1200), np.arange(1200, 1500))
    assert est.alpha_ == ALPHAS[-1]


def _uneven_columns(n: int = 400, d: int = 150, L: int = 5):
    """Sparse data whose columns differ in scale by 300x (as TF-IDF's rare and frequent n-grams do)."""
    rng = np.random.default_rng(2)
    X = sp.random(n, d, density=0.05, random_state=3, format="csr", dtype=np.float32)
    X = sp.csr_matrix(X @ sp.diags((10.0 ** rng.uniform(-1.5, 1, d)).astype(np.float32)))
    Y = (X @ rng.normal(size=(d, L)) + rng.normal(size=(n, L)) > 0.5).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("loss", ["log", "hinge"])
def test_preconditioned_solve_reaches_the_optimum_sooner(loss: str, monkeypatch):
    """The preconditioned solve (W = P U) ends at the unpreconditioned objective's optimum (SciPy's, on the
    original weights), and after 30 iterations it is several times closer to it than the plain solve."""
    from adtag.models import linear

    X, Y = _uneven_columns()
    d, L, alpha = X.shape[1], Y.shape[1], 1e-3

    def objective(w):
        f, g = _loss_grad(w.astype(np.float32), X, Y, alpha, loss, X.T.tocsr())
        return f, g.astype(np.float64)

    opts = {"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15}
    best = minimize(objective, np.zeros(d * L + L), jac=True, method="L-BFGS-B", options=opts).fun

    def excess(max_iter: int) -> float:
        est = LinearTagger(loss=loss, alpha=alpha, max_iter=max_iter).fit(X, Y)
        return (objective(np.concatenate([est.coef_.ravel(), est.intercept_]))[0] - best) / best

    assert linear.PRECONDITION
    assert excess(300) < 1e-5
    pre = excess(30)
    monkeypatch.setattr(linear, "PRECONDITION", False)
    assert pre < 0.2 * excess(30)


def test_preconditioned_callback_sees_the_original_weights():
    """The path's GAP checks read the weights W, not the solver's variables U: stopping at a check returns
    exactly the weights the check saw."""
    X, Y = _uneven_columns()
    L, seen = Y.shape[1], []
    est = LinearTagger(loss="log")
    w = est._solve(X, Y, 1e-3, None, 100, callback=lambda w: seen.append(w.copy()) or True)
    np.testing.assert_array_equal(w, seen[0])
    plain = LinearTagger(loss="log", alpha=1e-3, max_iter=300).fit(X, Y)
    assert np.abs(seen[0][:-L].reshape(-1, L) - plain.coef_).max() < 0.5 * np.abs(plain.coef_).max()
