"""Calibration of the final tag scores: a score of 0.8 should mean ~80% of such tags are right.

Two monotone steps, both fitted on the whole system's out-of-fold scores:

1. per-tag Platt scaling on the logit, ``sigmoid(a_l * z + b_l)``, shrunk toward one pooled fit
   so that a tag with a handful of positives borrows the pooled slope and offset;
2. one pooled isotonic map over all (item, tag) pairs, which fixes what a straight line on the
   logit cannot (e.g. a stacker that is over-confident only at the top).

Both steps keep each tag's order of items, so per-tag thresholds and AP are unchanged; only the
order of tags within an item can move (GAP is reported before and after).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _platt(z: np.ndarray, y: np.ndarray, a0: np.ndarray, b0: np.ndarray, lam_a, lam_b, iters: int = 30):
    """Newton steps for all columns at once: BCE(sigmoid(a z + b), y) + lam_a/2 (a-a0)^2 + lam_b/2 (b-b0)^2."""
    L = z.shape[1]
    a = np.broadcast_to(np.asarray(a0, np.float64), (L,)).copy()
    b = np.broadcast_to(np.asarray(b0, np.float64), (L,)).copy()
    for _ in range(iters):
        p = _sigmoid(a * z + b)
        r = p - y
        w = p * (1 - p) + 1e-9
        ga = (r * z).sum(0) + lam_a * (a - a0)
        gb = r.sum(0) + lam_b * (b - b0)
        haa = (w * z * z).sum(0) + lam_a
        hab = (w * z).sum(0)
        hbb = w.sum(0) + lam_b
        det = haa * hbb - hab * hab
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        step = np.minimum(1.0, 2.0 / np.maximum(np.abs(da), np.abs(db)).clip(1e-12))
        a, b = a - step * da, b - step * db
        if np.max(np.abs(step * da)) + np.max(np.abs(step * db)) < 1e-7:
            break
    return a, b


class Calibrator:
    """Fit on out-of-fold scores (n, L) and truth (n, L); ``transform`` maps new scores.

    ``prior`` is the weight, in pseudo-positives, that pulls a tag's Platt fit toward the pooled
    one: a tag with many more positives than ``prior`` gets its own fit.
    """

    def __init__(self, prior: float = 10.0, isotonic: bool = True) -> None:
        self.prior = prior
        self.isotonic = isotonic

    def fit(self, scores: np.ndarray, truth: np.ndarray) -> Calibrator:
        scores = np.asarray(scores, dtype=np.float64)
        y = (np.asarray(truth) > 0).astype(np.float64)
        if scores.shape != y.shape or scores.ndim != 2:
            raise ValueError(f"scores {scores.shape} and truth {y.shape} must be the same (n, L) shape")
        z = logit(scores)
        a_pool, b_pool = _platt(z.reshape(-1, 1), y.reshape(-1, 1), np.ones(1), np.zeros(1), 0.0, 0.0)
        # The prior is stated in positives: each parameter's weight is that of a typical positive pair.
        p = _sigmoid(a_pool * z + b_pool)
        w = (p * (1 - p))[y > 0] if y.any() else np.full(1, 0.25)
        lam_a = np.full(z.shape[1], self.prior * float((w * z[y > 0] ** 2).mean() if y.any() else 0.25))
        lam_b = np.full(z.shape[1], self.prior * float(w.mean()))
        self.a_, self.b_ = _platt(z, y, a_pool, b_pool, lam_a, lam_b)
        self.pooled_ = np.array([a_pool[0], b_pool[0]])
        if self.isotonic:
            from sklearn.isotonic import IsotonicRegression

            s = self._platt_scores(scores).ravel()
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y.ravel())
            self.iso_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.iso_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        else:
            self.iso_x_ = np.array([0.0, 1.0])
            self.iso_y_ = np.array([0.0, 1.0])
        return self

    def _platt_scores(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a_ * logit(scores) + self.b_)

    def transform(self, scores: np.ndarray) -> np.ndarray:
        s = self._platt_scores(np.asarray(scores, dtype=np.float64))
        out = np.interp(s, self.iso_x_, self.iso_y_)
        # Isotonic steps are flat: a tiny share of the Platt score keeps ties in their order.
        return (out * (1 - 1e-4) + 1e-4 * s).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        return {"a": self.a_, "b": self.b_, "iso_x": self.iso_x_, "iso_y": self.iso_y_, "pooled": self.pooled_}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> Calibrator:
        self = cls()
        self.a_, self.b_ = np.asarray(arrays["a"], np.float64), np.asarray(arrays["b"], np.float64)
        self.iso_x_, self.iso_y_ = np.asarray(arrays["iso_x"], np.float64), np.asarray(arrays["iso_y"], np.float64)
        self.pooled_ = np.asarray(arrays["pooled"], np.float64)
        return self
