"""Out-of-fold predictions of the whole system on its own training items.

The branches' meta-features are already out-of-fold; the stacker's in-sample scores on them are
not (it has seen those labels). Refitting the fusion K-fold on the cached meta-features gives
each training item a score from a stacker that never saw it: what calibration, thresholds and
the label audit must be fitted on. Cheap: no branch is refitted. A fusion network over the
features (concat, sum, max, attention) is refitted K-fold on the training items' features
instead (``kfold_oof``): K more network fits, seconds on a few hundred items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Fusion(Protocol):
    def fit(self, P: np.ndarray, present: np.ndarray, extras: np.ndarray, Y: np.ndarray) -> Any: ...

    def predict_proba(self, P: np.ndarray, present: np.ndarray, extras: np.ndarray) -> np.ndarray: ...


class MeanFusion:
    """Plain averaging of the branches an item has (nothing to learn)."""

    def fit(self, P, present, extras, Y) -> MeanFusion:
        return self

    def predict_proba(self, P: np.ndarray, present: np.ndarray, extras: np.ndarray) -> np.ndarray:
        w = present.astype(np.float32)
        w[w.sum(1) == 0] = 1.0
        return np.einsum("nb,nbl->nl", w, P) / w.sum(1, keepdims=True)


def fold_ids(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """Each item's fold number, balanced, from a seeded permutation."""
    if folds < 2 or n < folds:
        raise ValueError(f"need at least 2 folds and one item per fold (n={n}, folds={folds})")
    out = np.empty(n, np.int64)
    out[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return out


def kfold_oof(
    n: int, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], folds: int = 5, seed: int = 0
) -> np.ndarray:
    """(n, L) scores: ``fit_predict(train_rows, test_rows)`` fits on the other folds, scores one fold
    (it may keep the model it fitted: see ``system_oof``'s ``keep``)."""
    fold = fold_ids(n, folds, seed + 7)  # not the branches' split: a fresh one
    out = None
    for k in range(folds):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        s = np.asarray(fit_predict(tr, te), np.float32)
        if out is None:
            out = np.zeros((n, s.shape[1]), np.float32)
        out[te] = s
    return out


def system_oof(
    P: np.ndarray,
    present: np.ndarray,
    extras: np.ndarray,
    Y: np.ndarray,
    make_fusion: Callable[[], Fusion],
    folds: int = 5,
    seed: int = 0,
    keep: list | None = None,
) -> np.ndarray:
    """(n, L) scores, each from a fusion fitted on the other folds' meta-features; ``keep``: a list
    that receives the K fitted fusions (the refits), in fold order."""
    n = P.shape[0]
    extras = np.asarray(extras).reshape(n, -1)

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        f = make_fusion().fit(P[tr], present[tr], extras[tr], Y[tr])
        if keep is not None:
            keep.append(f)
        return f.predict_proba(P[te], present[te], extras[te])

    return kfold_oof(n, fit_predict, folds, seed)
