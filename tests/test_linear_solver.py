"""The linear branches' solver: the compact L-BFGS reaches SciPy's optimum, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from adtag.engines.local import run_parallel
from adtag.models.lbfgs import minimize_lbfgs
from adtag.models.linear import LinearTagger, _loss_grad


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


def _square(x: int) -> int:
    return x * x


def test_parallel_results_keep_input_order_while_largest_runs_first():
    jobs = [(i,) for i in range(7)]
    # arrays of different sizes: the scheduler starts the largest first, results stay in input order
    sized = [(np.zeros(k),) for k in (5, 50, 1, 500, 20, 2, 100)]
    assert list(run_parallel(_square, jobs, n_jobs=2)) == [i * i for i in range(7)]
    assert [len(r) for r in run_parallel(np.atleast_1d, sized, n_jobs=2)] == [5, 50, 1, 500, 20, 2, 100]
