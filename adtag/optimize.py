"""A compact L-BFGS (Armijo backtracking) for the linear branches: at 400 items x 892 words x 124
tags it takes 1.25 s against 2.9 s through SciPy's L-BFGS-B for the same evaluations.

On text the weight vector is large (100k words x 160 tags = 16M numbers), so the direction is
taken in the compact form of Byrd, Nocedal and Schnabel (1994): H g = gamma g + [S, gamma Y] M
[S^T g; gamma Y^T g], M from the small matrices S^T Y and Y^T Y: two matrix-vector products over
the stacked history per iteration (the new pair's products with the older ones are differences
of [S, Y]^T g_new and [S, Y]^T g) instead of the two-loop recursion's four passes per pair. The
iterate and history can be float32 (half the memory traffic; the pairs need no more precision
than the float32 gradient they come from).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg import get_blas_funcs, solve_triangular


def minimize_lbfgs(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    max_iter: int = 100,
    memory: int = 7,
    gtol: float = 1e-5,
    ftol: float = 1e-7,
    dtype: type = np.float64,
    callback: Callable[[np.ndarray], bool] | None = None,
    check_every: int = 10,
) -> np.ndarray:
    """Minimise a smooth ``fun`` returning (value, gradient); returns the final point.

    ``dtype`` is the precision of the iterate and the curvature history (float32 for the big
    linear branches; ``fun`` then receives float32 vectors). ``callback(x)`` is asked every
    ``check_every`` iterations whether to stop there (e.g. held-out GAP no longer rising).
    """
    x = np.array(x0, dtype=dtype)
    f, g = fun(x)
    g = np.asarray(g, dtype=dtype)
    n, m = x.shape[0], memory
    hist = np.zeros((2 * m, n), dtype=dtype)  # rows 0..m-1: s pairs, m..2m-1: y pairs
    sty = np.zeros((m, m))  # sty[i, j] = s_i . y_j
    yty = np.zeros((m, m))
    order: list[int] = []  # history rows from oldest to newest
    proj = np.zeros(2 * m)  # hist @ g: every s_j . g and y_j . g
    axpy = get_blas_funcs("axpy", (x,))  # y += a x in place: the direction in two passes, not five
    gg = float(g.dot(g))  # |g|^2: bounds the largest |g_i| and gives the steepest-descent slope
    for it in range(max_iter):
        # max |g_i| < gtol, tested on the largest entry only where |g|^2 does not decide it (one pass, not two)
        if gg < gtol * gtol or (gg < n * gtol * gtol and max(g.max(), -g.min()) < gtol):
            break
        if order:
            o = np.array(order)
            sg, yg = proj[o], proj[m + o]
            R = np.triu(sty[np.ix_(o, o)])
            last = order[-1]
            gamma = sty[last, last] / yty[last, last]
            u = solve_triangular(R, sg, lower=False)
            t = np.diag(R) * u + gamma * (yty[np.ix_(o, o)] @ u) - gamma * yg
            v = solve_triangular(R, t, lower=False, trans="T")
            c = np.zeros(2 * m)
            c[o], c[m + o] = v, -gamma * u
            d = (-c).astype(dtype) @ hist
            d = axpy(g, d, a=-gamma)
            slope = -gamma * gg - float(c @ proj)  # g . d from the products already known: no pass over d
        else:
            slope = 0.0
        if not order or slope >= 0 or not np.isfinite(slope):  # none or not a descent direction: steepest descent
            order.clear()
            scale = max(1.0, gg**0.5)
            d = -g / dtype(scale)
            slope = -gg / scale
        step = 1.0
        while True:
            x_new = x + d if step == 1.0 else d * dtype(step)  # one array: the weights are 28-100 MB on text
            if step != 1.0:
                x_new += x
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-8:
                break
            step *= 0.5
        g_new = np.asarray(g_new, dtype=dtype)
        i = order.pop(0) if len(order) == m else next(j for j in range(m) if j not in order)
        np.multiply(d, dtype(step), out=hist[i])  # s = x_new - x, one pass over d instead of two
        np.subtract(g_new, g, out=hist[m + i])
        sy, yy = float(hist[i].dot(hist[m + i])), float(hist[m + i].dot(hist[m + i]))
        if sy <= 1e-12:  # the pair is dropped; its row is free again, zeroed so it adds nothing
            hist[i] = 0
            hist[m + i] = 0
        new = (hist @ g_new).astype(np.float64)  # the next direction's products, and y_i's below
        if sy > 1e-12:
            # s_j . y_i and y_j . y_i of the older pairs as differences of products with g_new
            # and g (one pass over the history instead of two).
            col = new - proj
            sty[:, i] = col[:m]
            yty[:, i] = yty[i, :] = col[m:]
            sty[i, i], yty[i, i] = sy, yy
            order.append(i)
        proj = new
        done = f - f_new < ftol * max(1.0, abs(f))
        x, f, g, gg = x_new, f_new, g_new, float(g_new.dot(g_new))
        if done or (callback is not None and (it + 1) % check_every == 0 and it + 1 < max_iter and callback(x)):
            break
    return x
