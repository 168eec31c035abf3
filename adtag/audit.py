"""The label audit: training labels that the whole system's out-of-fold scores contradict.

A label present with a very low out-of-fold score is *likely wrong*; a tag absent with a very
high one is *likely missing*. Both are ranked by one number, the probability that the label is
in error under a simple noise model: each true tag is left out with probability ``drop`` and
each absent tag added with probability ``add``. The calibrated score ``s`` estimates
P(labelled | item), so the true probability is ``p = (s - add) / (1 - drop - add)`` and

    P(wrong | labelled)     = (1 - p) add / ((1 - p) add + p (1 - drop))
    P(missing | unlabelled) = p drop / (p drop + (1 - p) (1 - add))

Ranking by ``1 - s`` and ``s`` instead lets the many rare-tag labels with low scores crowd out
every missing one (on corrupted yeast: 0.435 of the top 200 corrupted, against 0.615 with the
posterior at the default rates). Each row names the branches whose out-of-fold probabilities
carried the evidence.

The audit ranks the out-of-fold scores themselves, so it calibrates them with the per-tag map
fitted on them (``AUDIT_MAP``, ``audit_scores``), whatever map the decision layer chose for new
items' scores: on out-of-fold scores the per-tag map is the better calibrated one (cross-fitted
ECE, BENCHMARKS.md section 11b), while new items' scores come from the final system and are kept
as they are unless a map is clearly better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

AUDIT_MAP = "tag-platt+isotonic"


@dataclass
class Suspect:
    rank: int
    item: str
    tag: str
    kind: str  # "likely wrong" (labelled, low score) or "likely missing" (unlabelled, high score)
    score: float  # calibrated out-of-fold score of the tag
    suspicion: float  # probability the label is in error
    evidence: list[tuple[str, float]] = field(default_factory=list)  # (branch, its probability)


def audit_scores(decider: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """The decision layer's out-of-fold scores (of ``rows``, default all), calibrated by ``AUDIT_MAP``
    fitted on all of them (after the same single-choice normalisation as the layer's)."""
    from adtag.decisions.calibrate import Calibrator
    from adtag.decisions.decider import normalise_groups

    oof = normalise_groups(decider.oof_scores, decider.exclusive)
    cal = Calibrator(method=AUDIT_MAP).fit(oof, decider.oof_truth)
    return cal.transform(oof if rows is None else oof[rows])


def error_probability(scores: np.ndarray, labels: np.ndarray, drop: float = 0.05, add: float = 0.01) -> np.ndarray:
    """P(the label is in error | calibrated score) for every (item, tag), under the noise model above."""
    if not (0 < drop < 1 and 0 < add < 1 and drop + add < 1):
        raise ValueError(f"noise rates drop={drop}, add={add} must be in (0, 1) with drop + add < 1")
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    p = np.clip((s - add) / (1 - drop - add), 1e-6, 1 - 1e-6)
    wrong = (1 - p) * add / ((1 - p) * add + p * (1 - drop))
    missing = p * drop / (p * drop + (1 - p) * (1 - add))
    return np.where(np.asarray(labels) > 0, wrong, missing)


def rank_suspects(
    scores: np.ndarray,
    labels: np.ndarray,
    ids: list[str],
    tags: list[str],
    branch_probs: np.ndarray | None = None,
    branch_names: list[str] | None = None,
    branch_present: np.ndarray | None = None,
    top: int = 200,
    min_suspicion: float = 0.0,
    drop: float = 0.05,
    add: float = 0.01,
) -> list[Suspect]:
    """The ``top`` most suspicious (item, tag) labels with suspicion at least ``min_suspicion``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0
    susp = error_probability(s, y, drop, add)
    flat = susp.ravel()
    k = min(top, flat.size)
    cand = np.argpartition(-flat, k - 1)[:k] if k else np.array([], np.int64)
    cand = cand[np.argsort(-flat[cand], kind="stable")]
    out = []
    for idx in cand:
        if flat[idx] < min_suspicion:
            break
        i, j = divmod(int(idx), s.shape[1])
        ev: list[tuple[str, float]] = []
        if branch_probs is not None and branch_names is not None:
            probs = branch_probs[i, :, j]
            live = np.ones(len(branch_names), bool) if branch_present is None else branch_present[i]
            # Missing label: the branches that scored it highest; wrong label: those that scored it lowest.
            order = np.argsort(probs if y[i, j] else -probs, kind="stable")
            ev = [(branch_names[b], float(probs[b])) for b in order if live[b]][:3]
        out.append(
            Suspect(
                rank=len(out) + 1,
                item=ids[i],
                tag=tags[j],
                kind="likely wrong" if y[i, j] else "likely missing",
                score=float(s[i, j]),
                suspicion=float(flat[idx]),
                evidence=ev,
            )
        )
    return out
