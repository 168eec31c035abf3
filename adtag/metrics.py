"""Metrics of the paper: GAP@k (as the YouTube-8M / TAAC evaluator), hit@1 and mAP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def _ap_of_pairs(scores: np.ndarray, hits: np.ndarray, num_positives: int) -> float:
    """Average precision of pooled (score, is-true) pairs over ``num_positives`` true pairs.

    GAP = sum_i P(i) * delta_r(i), delta_r(i) = 1/M at a true pair; M counts every true pair,
    including those that fell outside anyone's top-k (the official evaluator does the same).
    """
    if num_positives <= 0 or scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    h = hits[order].astype(np.float64)
    precision = np.cumsum(h) / np.arange(1, h.size + 1)
    return float(np.sum(precision * h) / num_positives)


def gap_at_k(scores: np.ndarray, truth: np.ndarray, top_k: int = 20) -> float:
    """Global average precision over each item's top-k tags (matrix form, (n, n_tags))."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth) > 0
    if scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} differ in shape")
    k = min(top_k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    return _ap_of_pairs(scores[rows, top].ravel(), truth[rows, top].ravel(), int(truth.sum()))


def gap_ranked(
    predictions: Mapping[str, Sequence[tuple[str, float]]],
    truth: Mapping[str, Iterable[str]],
    top_k: int = 20,
) -> float:
    """GAP@k from ranked ``id -> [(tag, score)]`` lists against ``id -> tags``.

    Items in ``truth`` with no prediction still count their true tags in M; predictions for
    items absent from ``truth`` are ignored, as the official evaluator does.
    """
    truth_sets = {k: set(v) for k, v in truth.items()}
    scores: list[float] = []
    hits: list[bool] = []
    for vid, preds in predictions.items():
        true = truth_sets.get(vid)
        if true is None:
            continue
        best = sorted(preds, key=lambda p: -p[1])[:top_k]
        scores.extend(float(s) for _, s in best)
        hits.extend(t in true for t, _ in best)
    m = sum(len(v) for v in truth_sets.values())
    return _ap_of_pairs(np.asarray(scores), np.asarray(hits, dtype=bool), m)


def hit_at_1(scores: np.ndarray, truth: np.ndarray) -> float:
    """Share of items (with at least one true tag) whose top-scored tag is true: the paper's accuracy."""
    truth = np.asarray(truth) > 0
    has = truth.any(axis=1)
    if not has.any():
        return 0.0
    top = np.asarray(scores).argmax(axis=1)
    return float(truth[np.arange(truth.shape[0]), top][has].mean())


def per_tag_ap(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Average precision of each tag over items; NaN for a tag with no positive."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth) > 0
    out = np.full(scores.shape[1], np.nan)
    for j in range(scores.shape[1]):
        m = int(truth[:, j].sum())
        if m:
            out[j] = _ap_of_pairs(scores[:, j], truth[:, j], m)
    return out


def mean_ap(scores: np.ndarray, truth: np.ndarray) -> float:
    """Macro mAP over the tags that have at least one positive."""
    ap = per_tag_ap(scores, truth)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def summary(scores: np.ndarray, truth: np.ndarray, top_k: int = 20) -> dict[str, float]:
    return {
        "gap": gap_at_k(scores, truth, top_k),
        "hit1": hit_at_1(scores, truth),
        "map": mean_ap(scores, truth),
    }
