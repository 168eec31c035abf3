"""Level 1 of the paper: one branch model per modality, trained K-fold.

Each branch's out-of-fold tag probabilities are the meta-features; its K fold models are kept
and averaged at prediction time, so no branch is ever refitted on the full data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

from adtag.models.linear import LinearTagger
from adtag.models.mlp import MLPTagger

JOINT = "joint"  # the early-fusion branch over all modalities at once

DEFAULT_MODELS = {
    "text": ["lr", "svm"],
    "vector": ["lr", "mlp"],
    "sequence": ["lr", "mlp"],
    "extra": ["lr"],
    JOINT: ["lr"],
}


@dataclass(frozen=True)
class BranchSpec:
    modality: str  # a modality name, or "joint"
    model: str  # "lr" | "svm" | "mlp"

    @property
    def name(self) -> str:
        return f"{self.modality}/{self.model}"


def make_estimator(model: str, seed: int = 0) -> LinearTagger | MLPTagger:
    if model == "lr":
        return LinearTagger(loss="log")
    if model == "svm":
        return LinearTagger(loss="hinge")
    if model == "mlp":
        return MLPTagger(seed=seed)
    raise ValueError(f"unknown branch model {model!r} (lr, svm, mlp)")


def make_folds(n: int, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One K-fold split shared by every branch, so the stacker never sees in-fold predictions."""
    n_folds = max(2, min(n_folds, n))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(np.arange(n)))


def fit_branch(
    spec: BranchSpec,
    X,
    Y: np.ndarray,
    present: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int = 0,
) -> tuple[np.ndarray, list[LinearTagger | MLPTagger]]:
    """Train one branch K-fold; return its out-of-fold probabilities (n, L) and the fold models.

    Items that lack the modality are left out of training (their rows carry no evidence); the
    branch still scores them, and the stacker sees them as absent.
    """
    oof = np.zeros(Y.shape, dtype=np.float32)
    models: list[LinearTagger | MLPTagger] = []
    first: LinearTagger | MLPTagger | None = None
    for k, (tr, va) in enumerate(folds):
        tr = tr[present[tr]]
        if len(tr) == 0:
            tr = folds[k][0]
        est = make_estimator(spec.model, seed + k)
        if isinstance(est, LinearTagger):
            if first is None:
                va_p = va[present[va]]
                if len(va_p) >= 5:
                    est.fit_select(X[tr], Y[tr], X[va_p], Y[va_p])
                else:
                    est.fit(X[tr], Y[tr])
            else:
                est = LinearTagger(**first.get_params()).fit(X[tr], Y[tr], init=first)
        else:
            est.fit(X[tr], Y[tr])
        first = first or est
        oof[va] = est.predict_proba(X[va])
        models.append(est)
    return oof, models


def predict_branch(models: list[LinearTagger | MLPTagger], X) -> np.ndarray:
    """Average of the fold models' probabilities."""
    out = models[0].predict_proba(X)
    for m in models[1:]:
        out = out + m.predict_proba(X)
    return (out / len(models)).astype(np.float32)
