"""Calibration of the final tag scores: a score of 0.8 should mean ~80% of such tags are right.

Five candidate maps, each fitted on the whole system's out-of-fold scores, each monotone per tag:

- ``identity``: the scores as they are (a BCE-trained, early-stopped stacker is often close);
- ``platt``: one Platt scaling on the logit, ``sigmoid(a * z + b)``, pooled over all tags;
- ``isotonic``: one pooled isotonic map over all (item, tag) pairs;
- ``tag-platt``: per-tag Platt scaling, shrunk toward the pooled fit so that a tag with a handful
  of positives borrows the pooled slope and offset;
- ``tag-platt+isotonic``: per-tag Platt, then the pooled isotonic map (fixes what a straight line
  on the logit cannot, e.g. a stacker over-confident only at the top).

``auto`` (the default) chooses among them by internal cross-validation: each is fitted on 4/5 of
the items and its expected calibration error measured on the other fifth, pooled over the five
folds. The scores are kept as they are (``identity``) unless the map with the lowest
cross-validated ECE beats them by more than two bootstrap standard errors of the difference.
Why identity and not the richest map is the reference (BENCHMARKS.md section 11b): the maps are
fitted on out-of-fold scores and applied to the final system's scores, which are less spread
(each branch's fold models averaged); a BCE-trained stacker is close to calibrated already, and on
a few hundred items a fitted map's gain on out-of-fold scores is mostly noise that does not carry
over. A map is used where the out-of-fold evidence for it is clear (yeast, TNEWS, birds).

Every map keeps each tag's order of items, so per-tag thresholds and AP are unchanged; only the
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


METHODS = ("identity", "platt", "isotonic", "tag-platt", "tag-platt+isotonic")  # simplest first (ties)
CV_FOLDS = 5
DEFAULT = "identity"  # the reference of ``auto``: replaced only by a clearly better map
BOOTSTRAP = 200  # item resamples for the standard error of a difference of cross-validated ECEs
SE_MARGIN = 2.0


def _weighted_ece(scores: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = 15) -> np.ndarray:
    """ECE (as ``adtag.metrics``) under each row of item weights ``w`` (B, n): one value per row."""
    idx = np.minimum((scores * bins).astype(np.int64), bins - 1).clip(0).ravel()
    s, t = scores.ravel(), y.ravel()
    out = np.empty(w.shape[0])
    for b, wb in enumerate(w):
        pw = np.repeat(wb, scores.shape[1])
        gap = np.bincount(idx, weights=pw * (s - t), minlength=bins)
        out[b] = np.abs(gap).sum() / max(pw.sum(), 1e-12)
    return out


def _ece(scores: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    from adtag.metrics import expected_calibration_error

    return expected_calibration_error(scores, y, bins)


class Calibrator:
    """Fit on out-of-fold scores (n, L) and truth (n, L); ``transform`` maps new scores.

    ``method``: one of ``METHODS`` or ``auto`` (chosen by internal cross-validation; the choice
    and each candidate's cross-validated ECE are kept in ``method_`` and ``cv_ece_``).
    ``prior`` is the weight, in pseudo-positives, that pulls a tag's Platt fit toward the pooled
    one: a tag with many more positives than ``prior`` gets its own fit. ``isotonic=False`` with
    the default method means ``tag-platt`` (kept for callers that only turn the isotonic step off).
    """

    def __init__(self, prior: float = 10.0, isotonic: bool = True, method: str = "auto") -> None:
        if method != "auto" and method not in METHODS:
            raise ValueError(f"calibration method {method!r}: choose auto or one of {', '.join(METHODS)}")
        self.prior = prior
        self.isotonic = isotonic
        self.method = method if isotonic or method != "auto" else "tag-platt"
        self.cv_ece_: dict[str, float] = {}

    def fit(self, scores: np.ndarray, truth: np.ndarray) -> Calibrator:
        scores = np.asarray(scores, dtype=np.float64)
        y = (np.asarray(truth) > 0).astype(np.float64)
        if scores.shape != y.shape or scores.ndim != 2:
            raise ValueError(f"scores {scores.shape} and truth {y.shape} must be the same (n, L) shape")
        method = self.method
        if method == "auto":
            method = self._choose(scores, y)
        self._fit_method(scores, y, method)
        self.method_ = method
        return self

    def _choose(self, scores: np.ndarray, y: np.ndarray) -> str:
        """``DEFAULT``, or the method with the lowest ECE on held-out folds of these items when it is
        clearly (``SE_MARGIN`` bootstrap standard errors) lower."""
        n = scores.shape[0]
        if n < 2 * CV_FOLDS:
            return DEFAULT
        from adtag.decisions.oof import fold_ids

        fold = fold_ids(n, CV_FOLDS, seed=11)
        held = {m: np.zeros_like(scores) for m in METHODS}
        for k in range(CV_FOLDS):
            tr, te = fold != k, fold == k
            for m in METHODS:
                held[m][te] = Calibrator(self.prior, method=m).fit(scores[tr], y[tr]).transform(scores[te])
        self.cv_ece_ = {m: round(_ece(held[m], y), 5) for m in METHODS}
        # The scores as they are are the reference; a map replaces them only when its cross-validated
        # ECE is lower by more than two bootstrap standard errors of the difference (items resampled).
        best = min(METHODS, key=lambda m: (self.cv_ece_[m], METHODS.index(m)))
        if best == DEFAULT:
            return DEFAULT
        w = np.random.default_rng(12).multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP).astype(np.float64)
        diff = _weighted_ece(held[DEFAULT], y, w) - _weighted_ece(held[best], y, w)
        return best if self.cv_ece_[DEFAULT] - self.cv_ece_[best] > SE_MARGIN * float(np.std(diff)) else DEFAULT

    def _fit_method(self, scores: np.ndarray, y: np.ndarray, method: str) -> None:
        L = scores.shape[1]
        z = logit(scores)
        a_pool, b_pool = _platt(z.reshape(-1, 1), y.reshape(-1, 1), np.ones(1), np.zeros(1), 0.0, 0.0)
        self.pooled_ = np.array([a_pool[0], b_pool[0]])
        self.a_, self.b_ = np.ones(L), np.zeros(L)
        if method == "platt":
            self.a_, self.b_ = np.full(L, a_pool[0]), np.full(L, b_pool[0])
        elif method.startswith("tag-platt"):
            # The prior is stated in positives: each parameter's weight is that of a typical positive pair.
            p = _sigmoid(a_pool * z + b_pool)
            w = (p * (1 - p))[y > 0] if y.any() else np.full(1, 0.25)
            lam_a = np.full(L, self.prior * float((w * z[y > 0] ** 2).mean() if y.any() else 0.25))
            lam_b = np.full(L, self.prior * float(w.mean()))
            self.a_, self.b_ = _platt(z, y, a_pool, b_pool, lam_a, lam_b)
        self.iso_x_ = np.array([0.0, 1.0])
        self.iso_y_ = np.array([0.0, 1.0])
        if method in ("isotonic", "tag-platt+isotonic"):
            from sklearn.isotonic import IsotonicRegression

            s = self._platt_scores(scores).ravel()
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y.ravel())
            self.iso_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.iso_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)

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
        self.method_ = "unknown"  # the arrays alone do not say; the decision layer's JSON does
        self.a_, self.b_ = np.asarray(arrays["a"], np.float64), np.asarray(arrays["b"], np.float64)
        self.iso_x_, self.iso_y_ = np.asarray(arrays["iso_x"], np.float64), np.asarray(arrays["iso_y"], np.float64)
        self.pooled_ = np.asarray(arrays["pooled"], np.float64)
        return self
