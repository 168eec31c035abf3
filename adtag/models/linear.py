"""Multi-label linear models (the paper's logistic regression and linear SVM) for all tags at once.

One L-BFGS solve over the (features x tags) weight matrix optimises the same objective as
one-vs-rest per tag, at the cost of a few sparse matrix products per iteration: this is what
keeps 5-fold training on thousands of items and 150 tags within seconds."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools

from adtag.metrics import gap_at_k
from adtag.models.base import Estimator
from adtag.optimize import minimize_lbfgs

ALPHAS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
PATH_ITER = 50  # iterations per alpha-path point, each warm-started from the last (BENCHMARKS.md 12e)
LATER_ITER = 25  # iterations of a later fold, cold: preconditioned, its held-out GAP is flat by then on text (12p)
LATER_ITER_DENSE = 50  # the same for dense inputs (not preconditioned: standardised columns; 12b, 12e)
CHECK_EVERY = 10  # a path point's validation GAP is checked this often: it stops once GAP stops rising (12n)
MEMORY = 4  # L-BFGS curvature pairs: the history passes are most of an iteration's cost on text
MAX_COLUMNS = 60_000  # a solve's most-used columns: binds the joint branch, not its views' own (BENCHMARKS 12k)
PRECONDITION = True  # solve for U with W = P U, P a per-feature scale from the Hessian's diagonal (12p)
CURVATURE = {"log": 0.25, "hinge": 0.5}  # the loss's curvature: sigmoid' at 0; 2 x the share (~1/4) of active margins


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=np.result_type(np.asarray(x), np.float32))  # 0.5 * (1 + tanh(x / 2)), in place
    out *= 0.5
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out if out.ndim else out[()]


def _loss_grad(
    w: np.ndarray, X, Y: np.ndarray, alpha, loss: str, Xt=None, Ypm: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Objective and gradient at ``w`` (float32: views of it, no copies of the weight matrix).

    ``Xt`` is X transposed as CSR, kept per solve: both products walk it (the scores with X as CSC over
    its arrays: 4x faster on text) and add into their outputs in place (no weight-size temporary).
    ``Ypm`` is ``2 Y - 1``, kept per solve for the hinge loss. The (items x tags) arrays are worked in
    place: a few passes over them instead of one temporary per operation.
    """
    d, L = X.shape[1], Y.shape[1]
    W = w[: d * L].reshape(d, L)
    b = w[d * L :]
    n = X.shape[0]
    Xt = Xt if Xt is not None else (X.T.tocsr() if sp.issparse(X) else X.T)
    S = np.zeros((n, L), np.float32)
    if sp.issparse(Xt):  # X as CSC over Xt's arrays: S += X @ W
        _sparsetools.csc_matvecs(n, d, L, Xt.indptr, Xt.indices, Xt.data, W.ravel(), S.ravel())
    else:
        S += Xt.T @ W
    S += b
    if loss == "log":
        # log(1 + e^s) - y s, written stably (6x faster than np.logaddexp in float32)
        T = np.abs(S)
        np.negative(T, out=T)
        np.exp(T, out=T)
        np.log1p(T, out=T)
        T += np.maximum(S, 0)
        T -= Y * S
        f = float(np.sum(T, dtype=np.float64)) / n
        G = _sigmoid(S)
        G -= Y
        G /= n
    else:  # squared hinge with labels in {-1, +1}
        Ypm = 2 * Y - 1 if Ypm is None else Ypm
        G = np.multiply(Ypm, S)
        np.subtract(1, G, out=G)
        np.maximum(G, 0, out=G)  # the margins' shortfall m
        f = float(np.sum(np.square(G), dtype=np.float64)) / n
        G *= Ypm
        G *= np.float32(-2 / n)
    grad = np.empty_like(w)
    gW = grad[: d * L].reshape(d, L)
    if np.ndim(alpha):  # one strength per feature row (the preconditioned variables): 0.5 sum_j a_j |W_j|^2
        np.multiply(W, alpha[:, None], out=gW)
        f += 0.5 * float(np.dot(W.ravel(), gW.ravel()))
    else:
        f += 0.5 * alpha * float(np.dot(W.ravel(), W.ravel()))
        np.multiply(W, np.float32(alpha), out=gW)
    if sp.issparse(Xt):  # gW += Xt @ G
        _sparsetools.csr_matvecs(d, n, L, Xt.indptr, Xt.indices, Xt.data, np.ravel(G), gW.ravel())
    else:
        gW += Xt @ G
    grad[d * L :] = G.sum(axis=0)
    return f, grad


class LinearTagger(Estimator):
    """Logistic regression (``loss="log"``) or linear SVM (``loss="hinge"``, squared hinge) over all tags.

    ``alpha`` is the L2 strength. ``fit_select`` picks ``alpha_`` from ``ALPHAS`` on a validation
    set (a warm-started path from strong to weak) and, for the SVM, fits the Platt sigmoid
    ``platt_`` that turns scores into probabilities; the K-fold loop calls it on the first fold
    and fits the other folds with the same choice (``fit_fold``)."""

    def __init__(self, loss: str = "log", alpha: float = 1e-3, max_iter: int = 100) -> None:
        self.loss = loss
        self.alpha = alpha
        self.max_iter = max_iter

    def _solve(
        self, X, Y: np.ndarray, alpha: float, w0: np.ndarray | None, max_iter: int | None = None, callback=None
    ) -> np.ndarray:
        d, L = X.shape[1], Y.shape[1]
        if w0 is None:
            w0 = np.zeros(d * L + L, dtype=np.float32)
            if self.loss == "log":
                prior = np.clip(Y.mean(0), 1e-3, 1 - 1e-3)
                w0[d * L :] = np.log(prior / (1 - prior))
        Xt = X.T.tocsr() if sp.issparse(X) else np.ascontiguousarray(X.T)
        Ypm = 2 * Y - 1 if self.loss == "hinge" else None
        fun = lambda w: _loss_grad(w, X, Y, alpha, self.loss, Xt, Ypm)  # noqa: E731
        p = _scales(Xt, X.shape[0], alpha, self.loss) if PRECONDITION and sp.issparse(X) else None
        if p is not None:
            # W = P U: the scores read X P (Xt's rows scaled once), the penalty 0.5 alpha |P U|^2 is one
            # strength per row (alpha p_j^2), the gradient in U is P grad_W; no pass per iteration added.
            Xt = Xt.copy()
            Xt.data *= np.repeat(p, np.diff(Xt.indptr))
            a_row = (alpha * p * p).astype(np.float32)
            fun = lambda u: _loss_grad(u, X, Y, a_row, self.loss, Xt, Ypm)  # noqa: E731
            w0 = _rescale(w0, 1 / p, L)
            if callback is not None:
                cb = callback
                callback = lambda u: cb(_rescale(u, p, L))  # noqa: E731
        w = minimize_lbfgs(
            fun,
            w0,
            max_iter or self.max_iter,
            MEMORY,
            dtype=np.float32,
            callback=callback,
            check_every=CHECK_EVERY,
        )
        return w if p is None else _rescale(w, p, L, out=w)

    def _set(self, w: np.ndarray, L: int, cols: np.ndarray | None = None, d: int = 0) -> None:
        W = w[:-L].reshape(-1, L)
        if cols is not None:  # the columns left out of the solve weigh nothing
            W, W[cols] = np.zeros((d, L), np.float32), W
        self.coef_, self.intercept_ = W.astype(np.float32, copy=False), w[-L:].astype(np.float32)

    def fit(self, X, Y: np.ndarray, init: LinearTagger | None = None) -> LinearTagger:
        """Fit at ``alpha``; ``init`` (the first fold's model) lends its chosen ``alpha_`` and ``platt_``,
        and the solve then stops after ``LATER_ITER`` iterations (sparse, preconditioned; ``LATER_ITER_DENSE``
        on dense inputs). It starts cold (see ``fit_fold``)."""
        X, Y = _as_input(X), np.asarray(Y, dtype=np.float32)
        later = LATER_ITER if PRECONDITION and sp.issparse(X) else LATER_ITER_DENSE
        max_iter = self.max_iter if init is None else min(later, self.max_iter)
        self.alpha_ = init.alpha_ if init is not None else self.alpha
        self.platt_ = init.platt_.copy() if init is not None else np.array([1.0, 0.0])
        Xs, cols = _narrow(X)
        self._set(self._solve(Xs, Y, self.alpha_, None, max_iter), Y.shape[1], cols, X.shape[1])
        return self

    def fit_select(self, X, Y: np.ndarray, X_val, Y_val: np.ndarray) -> LinearTagger:
        """Choose ``alpha_`` (and the SVM's Platt sigmoid ``platt_``) by GAP on the validation set.

        The path runs from strong to weak regularisation, each point warm-started from the last (same
        rows: no leak) and cut at ``PATH_ITER`` iterations; it stops at the first point that is not better.
        A point also stops early once its validation GAP, checked every ``CHECK_EVERY`` iterations, no
        longer rises (a point warm-started from the best one that does not beat it at once ends the path)."""
        X, Y, X_val = _as_input(X), np.asarray(Y, dtype=np.float32), _as_input(X_val)
        best: tuple[float, float, np.ndarray | None, np.ndarray | None] = (-1.0, ALPHAS[0], None, None)
        (Xs, cols), w = _narrow(X), None
        L, Xv = Y.shape[1], X_val if cols is None else X_val[:, cols]

        def stalled(w: np.ndarray, trace: list[float]) -> bool:
            trace.append(gap_at_k(np.asarray(Xv @ w[:-L].reshape(-1, L)) + w[-L:], Y_val))
            return len(trace) >= 2 and trace[-1] <= trace[-2] + 1e-4

        for a in ALPHAS:
            trace = [best[0]] if best[2] is not None else []
            w = self._solve(Xs, Y, a, w, PATH_ITER, callback=lambda w, t=trace: stalled(w, t))
            self._set(w, Y.shape[1], cols, X.shape[1])
            s = self.decision_function(X_val)
            g = gap_at_k(s, Y_val)
            if g <= best[0] + 1e-4:  # weaker regularisation stopped helping
                break
            best = (g, a, w.copy(), s)
        self.alpha_ = best[1]
        self._set(best[2], Y.shape[1], cols, X.shape[1])
        self.platt_ = _fit_platt(best[3], Y_val) if self.loss == "hinge" else np.array([1.0, 0.0])
        return self

    def fit_fold(self, X, Y: np.ndarray, train: np.ndarray, val: np.ndarray, prev: Any = None) -> LinearTagger:
        """First fold: select ``alpha_`` on its held-out rows; later folds reuse that ``alpha_`` (and
        ``platt_``) but start cold: the first fold's weights were fitted on this fold's held-out rows,
        and a warm start stopped early remembers their labels (out-of-fold scores then look better
        than new items' and the stacker learns to trust them)."""
        if prev is not None:
            return self.fit(X[train], Y[train], init=prev)
        if len(val) >= 5:
            return self.fit_select(X[train], Y[train], X[val], Y[val])
        return self.fit(X[train], Y[train])

    def absorb_scaling(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Rewrite a model fitted on (X - mean) / scale to read X: W / scale, b - mean @ (W / scale)."""
        W = self.coef_ / scale[:, None]
        self.coef_, self.intercept_ = W.astype(np.float32), (self.intercept_ - mean @ W).astype(np.float32)

    def decision_function(self, X) -> np.ndarray:
        return np.asarray(X @ self.coef_) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        a, b = self.platt_
        return _sigmoid(a * self.decision_function(X) + b).astype(np.float32)


def _narrow(X) -> tuple[Any, np.ndarray | None]:
    """A sparse ``X`` wider than ``MAX_COLUMNS`` cut to its columns with the most non-zeros, and those columns.
    (A budget relative to each view's non-zeros was measured and not kept: 0.92 of them cost the stack 0.54
    points on realistic text, BENCHMARKS 12n.)"""
    if not sp.issparse(X) or X.shape[1] <= MAX_COLUMNS:
        return X, None
    cols = np.sort(np.argsort(-np.bincount(X.indices, minlength=X.shape[1]), kind="stable")[:MAX_COLUMNS])
    return X[:, cols], cols


def _scales(Xt, n: int, alpha: float, loss: str) -> np.ndarray:
    """The preconditioner P: 1 / sqrt of the objective's Hessian diagonal for each feature row at the start,
    ``h sum_i x_ij^2 / n + alpha`` (``h`` the loss's curvature, ``CURVATURE``). TF-IDF columns differ in scale
    by orders of magnitude (rare n-grams: large values in few documents); the diagonal evens them out."""
    sq = np.zeros(Xt.shape[0], np.float64)
    nz = np.diff(Xt.indptr) > 0
    if Xt.nnz:
        sq[nz] = np.add.reduceat(np.square(Xt.data, dtype=np.float64), Xt.indptr[:-1][nz])
    return (1 / np.sqrt(CURVATURE[loss] * sq / n + alpha)).astype(np.float32)


def _rescale(w: np.ndarray, p: np.ndarray, L: int, out: np.ndarray | None = None) -> np.ndarray:
    """``w`` with each feature row's weights times ``p`` (the intercepts as they are)."""
    out = np.array(w, dtype=np.float32) if out is None else out
    out[: p.size * L].reshape(-1, L)[...] *= p[:, None]
    return out


def _as_input(X):
    return sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)


def _fit_platt(scores: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """One sigmoid(a*s + b) for all tags, fitted by logistic loss on pooled (score, label) pairs."""
    s, y = scores.ravel(), Y.ravel()

    def f(p: np.ndarray) -> tuple[float, np.ndarray]:
        z = p[0] * s + p[1]
        loss = np.mean(np.logaddexp(0, z) - y * z)
        g = _sigmoid(z) - y
        return float(loss), np.array([np.mean(g * s), np.mean(g)])

    from scipy.optimize import minimize  # the SVM's alone: ~0.3 CPU-s of imports in every other process

    return minimize(f, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
