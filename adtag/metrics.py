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


# ---------------------------------------------------------------- decisions and calibration
def decision_scores(decided: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Micro and macro precision, recall and F1 of decided tags (n, L) against truth (n, L).

    Macro averages over the tags that have a positive in ``truth`` or were decided at least once
    (a tag absent from both says nothing); a tag never decided scores precision 0.
    """
    d = np.asarray(decided) > 0
    t = np.asarray(truth) > 0
    tp = (d & t).sum(0).astype(np.float64)
    nd, nt = d.sum(0).astype(np.float64), t.sum(0).astype(np.float64)
    micro_p = tp.sum() / nd.sum() if nd.sum() else 0.0
    micro_r = tp.sum() / nt.sum() if nt.sum() else 0.0
    live = (nd + nt) > 0
    p = np.divide(tp, nd, out=np.zeros_like(tp), where=nd > 0)
    r = np.divide(tp, nt, out=np.zeros_like(tp), where=nt > 0)
    f = np.divide(2 * tp, nd + nt, out=np.zeros_like(tp), where=(nd + nt) > 0)
    return {
        "micro_precision": float(micro_p),
        "micro_recall": float(micro_r),
        "micro_f1": float(2 * tp.sum() / (nd.sum() + nt.sum())) if (nd.sum() + nt.sum()) else 0.0,
        "macro_precision": float(p[live].mean()) if live.any() else 0.0,
        "macro_recall": float(r[live].mean()) if live.any() else 0.0,
        "macro_f1": float(f[live].mean()) if live.any() else 0.0,
        "tags_per_item": float(d.sum(1).mean()) if d.shape[0] else 0.0,
    }


def reliability(scores: np.ndarray, truth: np.ndarray, bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width bins over all (item, tag) pairs: count, mean score and share true per bin."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = (np.asarray(truth) > 0).ravel().astype(np.float64)
    idx = np.minimum((s * bins).astype(np.int64), bins - 1).clip(0)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    conf = np.bincount(idx, weights=s, minlength=bins)
    acc = np.bincount(idx, weights=t, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"count": count, "confidence": conf / count, "accuracy": acc / count}


def expected_calibration_error(scores: np.ndarray, truth: np.ndarray, bins: int = 15) -> float:
    """ECE over all (item, tag) pairs: sum over bins of |share true - mean score| x bin share."""
    r = reliability(scores, truth, bins)
    n = r["count"].sum()
    if not n:
        return 0.0
    live = r["count"] > 0
    return float(np.sum(r["count"][live] * np.abs(r["accuracy"][live] - r["confidence"][live])) / n)


def per_group(
    scores: np.ndarray,
    truth: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    decided: np.ndarray | None = None,
    top_k: int = 20,
) -> dict[str, dict[str, float]]:
    """GAP@k, hit@1 (over items with a true tag in the group) and, given decisions, F1 per group."""
    scores, truth = np.asarray(scores), np.asarray(truth) > 0
    out = {}
    for g, name in enumerate(names):
        cols = np.flatnonzero(np.asarray(groups) == g)
        if not cols.size:
            continue
        row = {
            "n_tags": int(cols.size),
            "gap": gap_at_k(scores[:, cols], truth[:, cols], top_k),
            "hit1": hit_at_1(scores[:, cols], truth[:, cols]),
        }
        if decided is not None:
            ds = decision_scores(np.asarray(decided)[:, cols], truth[:, cols])
            row.update(micro_f1=ds["micro_f1"], macro_f1=ds["macro_f1"])
        out[name] = row
    return out
