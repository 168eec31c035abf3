"""One registry of fusions: every row of the paper's fusion table, name -> factory.

A fusion either learns on the meta-features (``on="meta-features"``: ``fit(MetaFeatures, Y)``,
``predict_proba(MetaFeatures)``, ``branch_weights()``) or end to end on the featurized
modalities (``on="features"``: ``fit(Features, Y)``, ``predict_proba(Features)``). ``adtag train
--fusion``, ``adtag ablate``, the ``Tagger`` and the ablation all read ``FUSIONS``; adding a
fusion is one ``register_fusion`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtag.metrics import gap_at_k
from adtag.models.base import Estimator
from adtag.models.meta_features import MetaFeatures


class NotApplicable(ValueError):
    """This fusion cannot be fitted on these meta-features (e.g. no joint branch)."""


def mean_fusion(P: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Plain averaging of branch probabilities over the branches an item has: (n, B, L) -> (n, L)."""
    w = present.astype(np.float32)
    w[w.sum(1) == 0] = 1.0
    return np.einsum("nb,nbl->nl", w, P) / w.sum(1, keepdims=True)


class MeanFusion(Estimator):
    """Plain averaging of the branches an item has (nothing to learn)."""

    def fit(self, mf: MetaFeatures, Y: np.ndarray) -> MeanFusion:
        self.n_branches_ = len(mf.branches)
        return self

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        return mean_fusion(mf.P, mf.present)

    def branch_weights(self) -> np.ndarray:
        return np.full(self.n_branches_, 1 / self.n_branches_)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"n_branches": self.n_branches_}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MeanFusion:
        self.n_branches_ = int(meta["n_branches"])
        return self


class BranchFusion(Estimator):
    """One branch's scores: ``branch`` by name, or (empty) the best by out-of-fold GAP@20."""

    def __init__(self, branch: str = "") -> None:
        self.branch = branch

    def fit(self, mf: MetaFeatures, Y: np.ndarray) -> BranchFusion:
        if self.branch:
            if self.branch not in mf.branches:
                raise NotApplicable(f"no branch {self.branch!r} among {mf.branches}")
            self.index_ = mf.branches.index(self.branch)
        else:
            gaps = [
                gap_at_k(mf.P[r, b], Y[r]) if (r := mf.present[:, b]).any() else -1.0 for b in range(len(mf.branches))
            ]
            self.index_ = int(np.argmax(gaps))
        self.n_branches_ = len(mf.branches)
        return self

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        return mf.P[:, self.index_]

    def branch_weights(self) -> np.ndarray:
        return np.eye(self.n_branches_)[self.index_]

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"index": self.index_, "n_branches": self.n_branches_}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> BranchFusion:
        self.index_, self.n_branches_ = int(meta["index"]), int(meta["n_branches"])
        return self


@dataclass(frozen=True)
class Fusion:
    name: str
    on: str  # "meta-features" or "features"
    make: Callable[..., Estimator]  # make(seed=..., **options) -> an unfitted fusion
    description: str


FUSIONS: dict[str, Fusion] = {}


def register_fusion(
    name: str, on: str, description: str
) -> Callable[[Callable[..., Estimator]], Callable[..., Estimator]]:
    """Decorator: register ``make(seed, **options)`` under ``name``."""
    if on not in ("meta-features", "features"):
        raise ValueError(f"fusion {name!r}: on must be 'meta-features' or 'features'")

    def wrap(make: Callable[..., Estimator]) -> Callable[..., Estimator]:
        if name in FUSIONS:
            raise ValueError(f"fusion {name!r} registered twice")
        FUSIONS[name] = Fusion(name, on, make, description)
        return make

    return wrap


def create_fusion(name: str, seed: int = 0, **options: Any) -> Estimator:
    """An unfitted fusion; ``options`` (``TrainConfig.stacker``) reach the stackers only."""
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose from {', '.join(FUSIONS)}")
    return FUSIONS[name].make(seed, **options)


def _stacker(kind: str) -> Callable[..., Estimator]:
    def make(seed: int, **options: Any) -> Estimator:
        from adtag.models.stacker import Stacker

        return Stacker(kind=kind, seed=seed, **options)

    return make


def _network(kind: str) -> Callable[..., Estimator]:
    def make(seed: int, **options: Any) -> Estimator:
        from adtag.models.fusion import FusionTagger

        return FusionTagger(kind, seed=seed)

    return make


register_fusion("stack", "meta-features", "default stacker: averaging plus tag-wise corrections")(_stacker("stack"))
register_fusion("paper", "meta-features", "the paper's 3-layer DNN stacker")(_stacker("paper"))
register_fusion("mean", "meta-features", "plain averaging of branch scores")(lambda seed, **o: MeanFusion())
register_fusion("best-branch", "meta-features", "the single branch with the best out-of-fold GAP")(
    lambda seed, **o: BranchFusion()
)
register_fusion("early-fusion-lr", "meta-features", "the joint branch: LR over all modalities at once")(
    lambda seed, **o: BranchFusion("joint/lr")
)
for _kind in ("concat", "sum", "max", "attention"):
    register_fusion(_kind, "features", f"the paper's {_kind} fusion network")(_network(_kind))
