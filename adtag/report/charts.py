"""Charts for the report, drawn with matplotlib's object API into PNG bytes.

No pyplot: the report must not touch the process-wide backend or figure registry of the
program that calls it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adtag.report.curves import PRCurve

ACCENT = "#d9480f"
BASE = "#4c6ef5"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def bar_chart(names: Sequence[str], values: Sequence[float], title: str, ylabel: str = "GAP@20") -> bytes:
    """Vertical bars, the best one in the accent colour, each labelled with its value."""
    fig = Figure(figsize=(max(3.2, 0.75 * len(names) + 1.5), 3.0))
    ax = fig.add_subplot()
    best = max(range(len(values)), key=values.__getitem__) if values else -1
    colours = [ACCENT if i == best else BASE for i in range(len(values))]
    bars = ax.bar(range(len(values)), values, color=colours)
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8, padding=2)
    ax.set_xticks(
        range(len(names)), list(names), rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_ylim(0, max([1.0, *values]) * 1.08)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def pr_chart(curve: PRCurve) -> bytes:
    """The pooled precision-recall curve, recall on x."""
    fig = Figure(figsize=(4.6, 3.4))
    ax = fig.add_subplot()
    ax.step(curve.recall, curve.precision, where="post", color=BASE, linewidth=1.8)
    ax.fill_between(curve.recall, curve.precision, step="post", alpha=0.15, color=BASE)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Precision-recall, pooled (AP = {curve.average_precision:.3f})", fontsize=11)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def reliability_chart(curves: Sequence[tuple[str, dict]], title: str = "Reliability on held-out items") -> bytes:
    """Share of true (item, tag) pairs against mean score per bin, one line per named curve.

    Each curve is ``(label, {"confidence": ..., "accuracy": ..., "count": ...})`` as from
    :func:`adtag.metrics.reliability`; empty bins are skipped. The diagonal is perfect calibration.
    """
    import numpy as np

    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999", linewidth=1, linestyle="--", label="perfect")
    for (label, r), colour in zip(curves, (BASE, ACCENT, "#2b8a3e"), strict=False):
        live = np.asarray(r["count"]) > 0
        ax.plot(
            np.asarray(r["confidence"])[live],
            np.asarray(r["accuracy"])[live],
            marker="o",
            markersize=3.5,
            linewidth=1.6,
            color=colour,
            label=label,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean score in bin")
    ax.set_ylabel("share of true tags")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
