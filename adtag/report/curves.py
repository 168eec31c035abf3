"""The pooled precision-recall curve of a set of ranked predictions against true tags.

Every (item, tag) pair is one decision. A true tag that the ranked list does not contain
can never be retrieved, so it still counts in the recall denominator; that keeps the curve
honest when predictions are cut to the top k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PRCurve:
    precision: np.ndarray
    recall: np.ndarray
    average_precision: float  # micro-average over all (item, tag) pairs
    n_items: int
    n_positives: int


def pooled_pr_curve(predictions: dict[str, list[tuple[str, float]]], truth: dict[str, list[str]]) -> PRCurve:
    """Precision and recall at every score threshold, pooled over the items in both dicts."""
    ids = [i for i in predictions if i in truth]
    scores: list[float] = []
    hits: list[bool] = []
    n_pos = 0
    for i in ids:
        true = set(truth[i])
        n_pos += len(true)
        seen: set[str] = set()
        for tag, score in predictions[i]:
            if tag in seen:
                continue
            seen.add(tag)
            scores.append(float(score))
            hits.append(tag in true)
    if not scores or n_pos == 0:
        return PRCurve(np.array([1.0]), np.array([0.0]), 0.0, len(ids), n_pos)
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(hits)[order])
    k = np.arange(1, len(order) + 1)
    precision = tp / k
    recall = tp / n_pos
    ap = float((precision * np.asarray(hits)[order]).sum() / n_pos)
    return PRCurve(precision, recall, ap, len(ids), n_pos)
