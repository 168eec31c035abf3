"""Decisions from thresholds plus the taxonomy's rules.

Order: per-tag thresholds; then, per group, at most ``per_group_max`` tags (the highest
scores; 0 is no cap) and at least ``per_group_min`` (the group's best tags are added); each is one
number for every group, or an array with each group's own value (e.g. a minimum of 0 for a group
that many items lack, a cap of 1 for a single-choice group); then an item with
fewer than ``min_tags`` decided tags gets its best ones; then every decided tag implies its
parent, grandparent, ... (a parent is never removed by the group cap).
"""

from __future__ import annotations

import numpy as np


def apply_rules(
    scores: np.ndarray,
    decided: np.ndarray,
    groups: np.ndarray | None = None,
    parents: np.ndarray | None = None,
    per_group_max: int | np.ndarray | None = None,
    per_group_min: int | np.ndarray = 0,
    min_tags: int = 0,
) -> np.ndarray:
    """``decided`` (n, L) bool from thresholds -> decided after the group rules and parents.

    ``per_group_max`` (None or 0: no cap) and ``per_group_min`` are each one number, or an array
    indexed by group number (``groups``' values).
    """
    out = np.array(decided, dtype=bool, copy=True)
    scores = np.asarray(scores)
    mins = np.asarray(per_group_min, dtype=np.int64)
    maxes = np.asarray(0 if per_group_max is None else per_group_max, dtype=np.int64)
    if groups is not None and (maxes.any() or mins.any()):
        for g in np.unique(groups[groups >= 0]):
            cols = np.flatnonzero(groups == g)
            sub = scores[:, cols]
            rank = np.argsort(np.argsort(-sub, axis=1, kind="stable"), axis=1)  # 0 = best in the group
            d = out[:, cols]
            g_max = int(maxes) if maxes.ndim == 0 else int(maxes[g])
            if g_max:
                # Keep the g_max best-scored among the decided ones.
                drank = np.where(d, rank, np.iinfo(np.int64).max)
                order = np.argsort(np.argsort(drank, axis=1, kind="stable"), axis=1)
                d &= order < g_max
            g_min = int(mins) if mins.ndim == 0 else int(mins[g])
            if g_min:
                d |= rank < min(g_min, cols.size)
            out[:, cols] = d
    if min_tags:
        # An item short of min_tags decided tags gets its best-scored ones.
        top = np.argsort(-scores, axis=1, kind="stable")[:, :min_tags]
        short = out.sum(1) < min_tags
        rows = np.flatnonzero(short)
        out[rows[:, None], top[short]] = True
    if parents is not None and (parents >= 0).any():
        # Walk up as many levels as the deepest chain (no cycles: the taxonomy checks them).
        for _ in range(len(parents)):
            child, par = np.flatnonzero(parents >= 0), parents[parents >= 0]
            add = np.zeros_like(out)
            np.logical_or.at(add.T, par, out[:, child].T)  # any decided child -> its parent
            new = out | add
            if (new == out).all():
                break
            out = new
    return out
