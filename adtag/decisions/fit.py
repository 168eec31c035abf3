"""Glue between a fitted Tagger and the decision layer (the only module that knows the Tagger)."""

from __future__ import annotations

from typing import Any

import numpy as np

from adtag.decisions.decider import Decider, Rules
from adtag.decisions.oof import MeanFusion, system_oof
from adtag.decisions.thresholds import Goal
from adtag.errors import AdtagError


def tagger_oof_scores(tagger: Any, Y: np.ndarray, folds: int | None = None) -> np.ndarray:
    """The whole system's out-of-fold scores on the training items the tagger was fitted on.

    The stacker is refitted K-fold on the cached out-of-fold meta-features (no branch is refitted).
    """
    oof = getattr(tagger, "oof_", None)
    if oof is None or getattr(tagger, "fusion_", None) is not None:
        raise AdtagError(
            "decisions need a stacker over out-of-fold meta-features (--fusion stack, paper or mean); "
            f"fusion {tagger.config.fusion!r} has none"
        )
    stacker = getattr(tagger, "stacker_", None)
    if stacker is not None:
        params = stacker.get_params()
        cls = type(stacker)

        def make():
            return cls(**params)
    else:
        make = MeanFusion
    return system_oof(
        oof["P"], oof["present"], oof["extras"], Y, make, folds or tagger.config.folds, tagger.config.seed
    )


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
