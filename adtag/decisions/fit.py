"""Glue between a fitted Tagger and the decision layer (the only module that knows the Tagger)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from adtag.decisions.decider import Decider, Rules
from adtag.decisions.oof import kfold_oof, system_oof
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


def _take(x: Any, rows: np.ndarray) -> Any:
    """The rows of ``Features`` (each block dense or CSR)."""
    return replace(x, blocks=[b[rows] for b in x.blocks], present=x.present[rows])


def tagger_oof_scores(
    tagger: Any, Y: np.ndarray, folds: int | None = None, items: list | None = None, keep: list | None = None
) -> np.ndarray:
    """The whole system's out-of-fold scores on the training items the tagger was fitted on.

    A fusion over meta-features is refitted K-fold on the cached out-of-fold meta-features (no
    branch is refitted), the default stacker held at the rung the final one chose (``Stacker(rung=)``).
    Why: the layer calibrates and thresholds *the final system's* scores; left free, a refit on 4/5 of
    the items may land on another rung (on the demo corpus, whose linear and net rungs are within 0.0002,
    two of five refits took the net rung, whose logits spread 4.3 against the final linear stacker's 2.6,
    and the calibration chosen to shrink them distorted the final scores: BENCHMARKS 11e). Holding the
    rung cross-fits the fitted model rather than the selection procedure. A fusion network over the
    features (``on == "features"``) is refitted K-fold on the featurized ``items`` (the training items,
    in the order of ``Y``). ``keep``: a list that receives the K refitted fusions (``scores_for_decisions``).
    """
    cfg = tagger.config
    folds = folds or cfg.folds
    from adtag.models.fusions import FUSIONS, create_fusion

    if FUSIONS[cfg.fusion].on == "features":
        if items is None:
            raise AdtagError(f"decisions for fusion {cfg.fusion!r} need the training items to refit it K-fold")
        x = tagger.features(items)

        def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            f = create_fusion(cfg.fusion, cfg.seed).fit(_take(x, tr), Y[tr])
            if keep is not None:
                keep.append(f)
            return f.predict_proba(_take(x, te))

        return kfold_oof(len(items), fit_predict, folds, cfg.seed)
    mf = getattr(tagger, "meta_features_", None)
    if mf is None:
        raise AdtagError(
            "decisions need the out-of-fold meta-features of training: fit the tagger (adtag train --decide), "
            "a loaded model folder does not keep them in memory"
        )

    rung = getattr(getattr(tagger, "fusion_", None), "chosen_", None) if cfg.fusion == "stack" else None
    options = {**cfg.stacker, **({"rung": rung} if rung else {})}

    def make():
        return _MetaFeaturesFusion(lambda: create_fusion(cfg.fusion, cfg.seed, **options), mf.branches)

    wrapped: list = []
    oof = system_oof(mf.P, mf.present, mf.extras, Y, make, folds, cfg.seed, keep=wrapped)
    if keep is not None:
        keep.extend(w.fusion for w in wrapped)
    return oof


def scores_for_decisions(tagger: Any, items: list) -> tuple[np.ndarray, np.ndarray]:
    """(ranked, for decisions): the final system's scores of new items, and the scores the decision layer
    decides on: the mean of its K refits' scores (the fusions its calibration and thresholds were fitted on,
    applied to the same K passes of the branches), or the ranked scores when the layer kept no refits.

    Why: the thresholds are chosen on scores of refits fitted on 4/5 of the training items; the final
    fusion, fitted on all of them, is another model. Where it is a network it can spread its scores wider
    than its refits: on birds, in the 7 of 20 outer folds (4 seeds) whose stacker took the net rung, the
    pairs `precision=0.9` decided on the final fusion's scores were right 0.78 of the time, on the refits'
    mean 0.82 (the linear folds 0.91 either way); over 4 seeds 0.858 -> 0.876, the other sets within
    +-0.005 (BENCHMARKS 11g). The ranked scores stay the final fusion's: GAP does not move.
    """
    from adtag.models.tagger import fuse_passes

    decider = getattr(tagger, "decider_", None)
    refits = list(getattr(decider, "refits", None) or [])
    if not refits:
        s = tagger.predict_proba(items)
        return s, s
    if tagger.on_features:
        x = tagger.features(items)
        ranked = tagger.fusion_.predict_proba(x)
        return ranked, (sum(r.predict_proba(x) for r in refits) / len(refits)).astype(np.float32)
    passes = tagger.meta_features(items, passes=True)
    ranked = fuse_passes(tagger.fusion_, passes)
    return ranked, (sum(fuse_passes(r, passes) for r in refits) / len(refits)).astype(np.float32)


def fit_decider(
    tagger: Any,
    ids: list[str],
    Y: np.ndarray,
    goal: Goal | str = "f1",
    rules: Rules | None = None,
    band: float = 0.1,
    oof_scores: np.ndarray | None = None,
    items: list | None = None,
) -> Decider:
    """Calibration + thresholds for ``goal`` on the tagger's whole-system out-of-fold scores
    (``items``: the training items, needed by a fusion network over the features); the layer keeps the
    K refits that made those scores, to score new items for decisions (``scores_for_decisions``)."""
    refits: list = []
    if oof_scores is None:
        oof_scores = tagger_oof_scores(tagger, Y, items=items, keep=refits)
    d = Decider.fit(oof_scores, Y, tagger.vocab_.tags, goal, ids=ids, rules=rules, band=band)
    return replace(d, refits=refits)
