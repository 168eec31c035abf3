"""Level 1 of the paper: one branch model per modality, trained K-fold.

Branch models live in one registry (name -> class and its default parameters), as encoders do:
``register_branch_model("lr", LinearTagger, loss="log")`` makes ``lr`` usable in
``TrainConfig.branch_models``. Each branch's K fold models are kept (no branch is refitted on the
full data); a new item is scored K times, pass k with every branch's fold-k model (``Tagger``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from adtag.models.base import Estimator
from adtag.models.linear import LinearTagger
from adtag.models.mlp import MLPTagger

JOINT = "joint"  # the early-fusion branch over all modalities at once

DEFAULT_MODELS = {
    "text": ["lr", "svm"],
    "vector": ["lr", "mlp"],
    "sequence": ["lr", "mlp"],
    "extra": ["lr"],
    "scores": ["scores"],  # an external model's scores reach the stacker as they are
    JOINT: ["lr"],
}

BRANCH_MODELS: dict[str, tuple[type[Estimator], dict[str, Any]]] = {}


def register_branch_model(name: str, cls: type[Estimator], **params: Any) -> None:
    if name in BRANCH_MODELS:
        raise ValueError(f"branch model {name!r} registered twice")
    BRANCH_MODELS[name] = (cls, params)


class PassThrough(Estimator):
    """The branch of a score modality: its out-of-fold meta-features are the scores themselves. Nothing
    is learned from the labels (re-learning strong scores from a few hundred items loses quality); the
    scores must already be out-of-sample for the training items."""

    def fit(self, X: np.ndarray, Y: np.ndarray) -> PassThrough:
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"scores have {X.shape[1]} columns, the vocabulary {Y.shape[1]} tags")
        self.n_tags_ = int(Y.shape[1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(X, dtype=np.float32), 0.0, 1.0)


register_branch_model("lr", LinearTagger, loss="log")
register_branch_model("scores", PassThrough)
register_branch_model("svm", LinearTagger, loss="hinge")
register_branch_model("mlp", MLPTagger)


def make_branch_model(name: str, seed: int = 0) -> Estimator:
    """An unfitted branch model; ``seed`` goes to models that take one."""
    if name not in BRANCH_MODELS:
        raise ValueError(f"unknown branch model {name!r} ({', '.join(BRANCH_MODELS)})")
    cls, params = BRANCH_MODELS[name]
    return cls(**params, **({"seed": seed} if "seed" in cls.param_names() else {}))


@dataclass(frozen=True)
class BranchSpec:
    modality: str  # a modality name, or "joint"
    model: str  # a name in BRANCH_MODELS

    @property
    def name(self) -> str:
        return f"{self.modality}/{self.model}"


def make_folds(n: int, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One K-fold split shared by every branch, so the stacker never sees in-fold predictions.

    scikit-learn's ``KFold(n_folds, shuffle=True, random_state=seed)``, index for index, without its
    import (~1.5 CPU-s with scipy.stats and pandas, in every process of a command that needs no more)."""
    n_folds = max(2, min(n_folds, n))
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    folds, start = [], 0
    for size in sizes:
        test = np.zeros(n, bool)
        test[order[start : start + size]] = True
        folds.append((np.flatnonzero(~test), np.flatnonzero(test)))
        start += size
    return folds


def _standardise(est: Estimator, X, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A dense input's mean and scale on a fold's own training rows (the featurizer's statistics include the
    held-out rows, a new item's never do), for a model that takes them into its first layer; else None."""
    if sp.issparse(X) or not hasattr(est, "absorb_scaling") or len(rows) <= 1:
        return None
    Xr = np.asarray(X[rows], np.float64)
    return Xr.mean(0), np.where((sd := Xr.std(0)) > 1e-6, sd, 1.0)  # a constant column keeps scale 1


def _fold_rows(present: np.ndarray, fold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A fold's training rows: items without the modality are left out (no evidence), unless none has it."""
    tr = fold[0]
    return tr[present[tr]] if present[tr].any() else tr


def fit_branch_fold(spec: BranchSpec, X, Y: np.ndarray, present: np.ndarray, folds: list, seed: int, k: int, prev=None):
    """Fold ``k`` of a branch (one job: later folds run once fold 1 has chosen the settings ``prev``):
    its held-out probabilities and model. Items without the modality are left out of training (no
    evidence); the branch still scores them and the stacker sees them as absent. A dense input is
    standardised again on the fold's own rows, then that is taken into the model's first linear layer
    (same saved format)."""
    va, rows = folds[k][1], _fold_rows(present, folds[k])
    est = make_branch_model(spec.model, seed + k)
    stats = _standardise(est, X, rows)
    Xs = ((X - stats[0]) / stats[1]).astype(np.float32) if stats else X
    est.fit_fold(Xs, Y, rows, va[present[va]], prev)
    held_out = est.predict_proba(Xs[va])
    if stats:  # the model fitted on (X - mean) / scale, rewritten to read X
        est.absorb_scaling(*stats)
    return held_out, est


def fits_folds_together(model: str, X) -> bool:
    """Whether a branch model fits its K fold models as one job (``fit_folds``: the MLP's batched network)."""
    return hasattr(BRANCH_MODELS[model][0], "fit_folds") and not sp.issparse(X)


def fit_branch_folds(specs: list[BranchSpec], Xs: list, Y: np.ndarray, present: np.ndarray, folds: list, seed: int):
    """Every fold of some branches of one model (``fits_folds_together``) and input width, as one job: for
    each branch, ``fit_branch_fold``'s (held-out probabilities, model) of each fold. All their fold models
    train as one batched network, each the same as fitted alone (its seed, rows and standardisation) but for
    dropout's random draws. ``present``: (n, branches)."""
    n, K = len(Y), len(folds)
    rows = [b * n + _fold_rows(present[:, b], f) for b in range(len(specs)) for f in folds]  # rows of the stack
    ests = [make_branch_model(s.model, seed + k) for s in specs for k in range(K)]
    X = np.concatenate([np.asarray(x, np.float32) for x in Xs])  # the branches' inputs one above the other
    stats = [_standardise(e, X, r) for e, r in zip(ests, rows, strict=True)]
    d = X.shape[1]
    mean = np.stack([st[0] if st else np.zeros(d) for st in stats])
    scale = np.stack([st[1] if st else np.ones(d) for st in stats])
    type(ests[0]).fit_folds(ests, X, np.tile(np.asarray(Y, np.float32), (len(specs), 1)), rows, mean, scale)
    out: list[list] = [[] for _ in specs]
    for g, (est, st) in enumerate(zip(ests, stats, strict=True)):
        b, va = divmod(g, K)[0], folds[g % K][1]
        out[b].append((est.predict_proba(((Xs[b][va] - mean[g]) / scale[g]).astype(np.float32)), est))
        if st:
            est.absorb_scaling(*st)
    return out


def settings(est: Estimator) -> Estimator:
    """The first fold's model as later folds may reuse it: without its weights (they were fitted on
    the later folds' held-out rows; a warm start from them leaks their labels)."""
    out = copy.copy(est)
    vars(out).update({k: None for k, v in vars(est).items() if isinstance(v, np.ndarray) and v.size > 1000})
    return out


def out_of_fold(shape: tuple, folds: list, fits: list) -> tuple[np.ndarray, list[Estimator]]:
    """Each fold's (held-out probabilities, model) as out-of-fold probabilities and the fold models."""
    oof = np.zeros(shape, dtype=np.float32)
    for (_, va), (p, _) in zip(folds, fits, strict=True):
        oof[va] = p
    return oof, [m for _, m in fits]
