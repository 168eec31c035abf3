"""One registry of fusions, every row of the paper's fusion table: name -> factory (numpy only).

A fusion learns on the meta-features (``on="meta-features"``) or end to end on the featurized
modalities (``on="features"``); the CLI, the ``Tagger`` and the ablation read ``FUSIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from adtag.models.base import Estimator
from adtag.models.meta_features import MetaFeatures

NETWORKS = ("concat", "sum", "max", "attention")  # the paper's fusion networks (fusion.py)


class NotApplicable(ValueError):
    """This fusion cannot be fitted on these meta-features (e.g. there is no joint branch)."""


def mean_fusion(P: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Plain averaging of branch probabilities over the branches an item has: (n, B, L) -> (n, L)."""
    w = present.astype(np.float32)
    w[w.sum(1) == 0] = 1.0
    return np.einsum("nb,nbl->nl", w, P) / w.sum(1, keepdims=True)


class BranchFusion(Estimator):
    """Scores of one branch (``branch`` by name, or the best by out-of-fold GAP@20), or with
    ``branch="*"`` plain averaging of all branches."""

    def __init__(self, branch: str = "") -> None:
        self.branch = branch

    def fit(self, mf: MetaFeatures, Y: np.ndarray) -> BranchFusion:
        B = len(mf.branches)
        if self.branch == "*":
            self.weights_ = np.full(B, 1 / B)
        elif self.branch and self.branch not in mf.branches:
            raise NotApplicable(f"no branch {self.branch!r} among {mf.branches}")
        else:
            gap = [-1 if g is None else g for g in mf.branch_gap(Y)]
            self.weights_ = np.eye(B)[mf.branches.index(self.branch) if self.branch else int(np.argmax(gap))]
        return self

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        if self.branch == "*":
            return mean_fusion(mf.P, mf.present)
        return mf.P[:, int(np.argmax(self.weights_))]

    def branch_weights(self) -> np.ndarray:
        return self.weights_


@dataclass(frozen=True)
class Fusion:
    name: str
    on: str  # "meta-features" or "features"
    make: Callable[..., Estimator]  # make(seed, **options) -> an unfitted fusion
    description: str


FUSIONS: dict[str, Fusion] = {}


def register_fusion(name: str, on: str, make: Callable[..., Estimator], description: str) -> None:
    if on not in ("meta-features", "features") or name in FUSIONS:
        raise ValueError(f"fusion {name!r}: registered twice, or 'on' is not meta-features/features")
    FUSIONS[name] = Fusion(name, on, make, description)


def create_fusion(name: str, seed: int = 0, **options: Any) -> Estimator:
    """An unfitted fusion; ``options`` (``TrainConfig.stacker``) reach the stackers only."""
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose from {', '.join(FUSIONS)}")
    return FUSIONS[name].make(seed, **options)


def _stacker(kind: str, seed: int, **options: Any) -> Estimator:
    from adtag.models.stacker import Stacker  # torch: only when a stacker is built

    return Stacker(kind=kind, seed=seed, **options)


def _network(kind: str, seed: int, **options: Any) -> Estimator:  # the options are the stackers'
    from adtag.models.fusion import FusionTagger

    return FusionTagger(kind, seed=seed)


register_fusion(
    "stack", "meta-features", partial(_stacker, "stack"), "default stacker: averaging plus tag-wise corrections"
)
register_fusion("paper", "meta-features", partial(_stacker, "paper"), "the paper's 3-layer DNN stacker")
register_fusion("mean", "meta-features", lambda seed, **o: BranchFusion("*"), "plain averaging of branch scores")
register_fusion("best-branch", "meta-features", lambda seed, **o: BranchFusion(), "the best single branch")
register_fusion("early-fusion-lr", "meta-features", lambda seed, **o: BranchFusion("joint/lr"), "LR on all modalities")
for _kind in NETWORKS:
    register_fusion(_kind, "features", partial(_network, _kind), f"the paper's {_kind} fusion network")
