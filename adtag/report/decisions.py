"""The report's decision section: a reliability diagram before/after calibration and per-tag thresholds."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from adtag.metrics import decision_scores, expected_calibration_error, reliability


def decisions_data(
    decider: Any, raw_scores: np.ndarray, truth: np.ndarray, decide_on: np.ndarray | None = None
) -> dict[str, Any]:
    """Everything the section shows, from a fitted decision layer and held-out raw scores + truth;
    ``decide_on``: the scores the layer decides on (``decisions.fit.scores_for_decisions``), else the raw ones."""
    cal, decided, review = decider.decide(raw_scores, decide_on)
    th = decider.thresholds
    npos = decider.oof_truth.sum(0) if decider.oof_truth is not None else np.zeros(len(decider.tags))
    return {
        "goal": str(th.goal),
        "band": th.band,
        "n_items": int(raw_scores.shape[0]),
        "ece_before": expected_calibration_error(raw_scores, truth),
        "ece_after": expected_calibration_error(cal, truth),
        "reliability": {"before": reliability(raw_scores, truth), "after": reliability(cal, truth)},
        "decisions": decision_scores(decided, truth),
        "review_per_item": float(review.sum(1).mean()) if len(review) else 0.0,
        "thresholds": [
            {"tag": t, "threshold": float(v), "own": bool(o), "positives": int(p)}
            for t, v, o, p in zip(decider.tags, th.values, th.own, npos, strict=True)
        ],
    }


def decisions_html(data: dict[str, Any] | None, img) -> str:
    """HTML for the section; ``img(png_bytes, alt)`` embeds a chart."""
    if not data:
        return '<p class="empty">no decision layer: train with <code>adtag train --decide f1</code></p>'
    from adtag.report.charts import reliability_chart

    e = html.escape
    chart = img(
        reliability_chart(
            [("before calibration", data["reliability"]["before"]), ("after", data["reliability"]["after"])]
        ),
        "reliability diagram",
    )
    d = data["decisions"]
    caption = (
        f"{data['n_items']} held-out items, all (item, tag) pairs in 15 equal-width bins. Expected calibration error "
        f"{data['ece_before']:.4f} before, {data['ece_after']:.4f} after. Decided tags (goal {data['goal']}): micro "
        f"precision {d['micro_precision']:.3f}, recall {d['micro_recall']:.3f}, F1 {d['micro_f1']:.3f}; macro F1 "
        f"{d['macro_f1']:.3f}; {d['tags_per_item']:.2f} tags and {data['review_per_item']:.2f} in the review band "
        f"(&plusmn;{data['band']:.2f}) per item."
    )

    def row(r: dict[str, Any]) -> str:
        value = f"{r['threshold']:.3f}" if np.isfinite(r["threshold"]) else "never"
        kind = "own" if r["own"] else "pooled"
        cells = f"<td>{e(r['tag'])}</td><td class='num'>{value}</td><td>{kind}</td>"
        return f"<tr>{cells}<td class='num'>{r['positives']}</td></tr>"

    rows = "".join(row(r) for r in sorted(data["thresholds"], key=lambda r: (-r["positives"], r["tag"])))
    table = (
        "<table class='ap'><thead><tr><th>tag</th><th class='num'>threshold</th><th>kind</th>"
        f"<th class='num'>training positives</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return f"<figure>{chart}<figcaption>{caption}</figcaption></figure>{table}"
