"""Glue between a fitted Tagger and the decision layer (the only module that knows the Tagger)."""

from __future__ import annotations

from typing import Any

import numpy as np

from adtag.decisions.decider import Decider, Rules
from adtag.decisions.oof import system_oof
from adtag.decisions.thresholds import Goal
from adtag.errors import AdtagError


class _MetaFeaturesFusion:
    """Adapts a fusion that takes ``MetaFeatures`` to the (P, present, extras) interface of system_oof."""

    def __init__(self, make, branches: list[str]) -> None:
        self.fusion = make()
        self.branches = branches

    def _mf(self, P, present, extras):
        from adtag.models.meta_features import MetaFeatures

        return MetaFeatures(P, present, self.branches, extras)

    def fit(self, P, present, extras, Y) -> _MetaFeaturesFusion:
        self.fusion.fit(self._mf(P, present, extras), Y)
        return self

    def predict_proba(self, P, present, extras) -> np.ndarray:
        return self.fusion.predict_proba(self._mf(P, present, extras))


def tagger_oof_scores(tagger: Any, Y: np.ndarray, folds: int | None = None) -> np.ndarray:
    """The whole system's out-of-fold scores on the training items the tagger was fitted on.

    The fusion is refitted K-fold on the cached out-of-fold meta-features (no branch is refitted).
    """
    cfg = tagger.config
    folds = folds or cfg.folds
    mf = getattr(tagger, "meta_features_", None)
    if mf is None:
        raise AdtagError(
            f"decisions need a fusion over out-of-fold meta-features; fusion {cfg.fusion!r} has none "
            "(use --fusion stack, paper or mean)"
        )
    from adtag.models.fusions import create_fusion

    def make():
        return _MetaFeaturesFusion(lambda: create_fusion(cfg.fusion, cfg.seed, **cfg.stacker), mf.branches)

    return system_oof(mf.P, mf.present, mf.extras, Y, make, folds, cfg.seed)


def fit_decider(
    tagger: Any,
    ids: list[str],
    Y: np.ndarray,
    goal: Goal | str = "f1",
    rules: Rules | None = None,
    band: float = 0.1,
    oof_scores: np.ndarray | None = None,
) -> Decider:
    """Calibration + thresholds for ``goal`` on the tagger's whole-system out-of-fold scores."""
    if oof_scores is None:
        oof_scores = tagger_oof_scores(tagger, Y)
    return Decider.fit(oof_scores, Y, tagger.vocab_.tags, goal, ids=ids, rules=rules, band=band)
