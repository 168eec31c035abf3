"""What ``adtag evaluate`` adds for decisions and a taxonomy: decided tags' P/R/F1, per-group figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adtag.data.taxonomy import Taxonomy
from adtag.decisions.io import read_decided
from adtag.metrics import decision_scores, gap_ranked


def decisions_report(
    decided: dict[str, list[str]], truth: dict[str, list[str]], tags: list[str], ids: list[str] | None = None
) -> dict:
    """Micro/macro precision, recall, F1 of the decided tags on ``ids`` (default: items with truth)."""
    ids = [k for k in truth if truth[k]] if ids is None else ids
    col = {t: j for j, t in enumerate(tags)}
    d = np.zeros((len(ids), len(tags)), bool)
    t = np.zeros_like(d)
    for i, k in enumerate(ids):
        for tag in decided.get(k, []):
            d[i, col[tag]] = True
        for tag in truth[k]:
            t[i, col[tag]] = True
    return decision_scores(d, t)


def per_group_report(preds, truth, decided, tax: Taxonomy, top_k: int) -> dict:
    """GAP@k and hit@1 of the ranked predictions, and F1 of decided tags, within each group."""
    out = {}
    for g in tax.groups:
        members = {t for t, grp in tax.group.items() if grp == g}
        gt = {k: [t for t in v if t in members] for k, v in truth.items()}
        gt = {k: v for k, v in gt.items() if v}
        if not gt:
            continue
        gp = {k: [(t, s) for t, s in v if t in members] for k, v in preds.items()}
        hits = [bool(gp.get(k)) and max(gp[k], key=lambda p: p[1])[0] in set(v) for k, v in gt.items()]
        row = {
            "n_tags": len(members),
            "n_items": len(gt),
            "gap": gap_ranked(gp, gt, top_k),
            "hit1": float(np.mean(hits)),
        }
        if decided is not None:
            gd = {k: [t for t in decided.get(k, []) if t in members] for k in truth}
            tags = sorted(members | {t for v in gd.values() for t in v})
            ids = [k for k in truth if truth[k]]
            ds = decisions_report(gd, {k: [t for t in truth[k] if t in members] for k in ids}, tags, ids)
            row.update(micro_f1=ds["micro_f1"], macro_f1=ds["macro_f1"])
        out[g] = row
    return out


def extend_evaluation(
    res: dict, predictions: Path, taxonomy: Path | None, preds: dict, truth: dict, top_k: int
) -> list[str]:
    """Add ``decisions`` (when the file holds decided tags) and ``per_group`` (with a taxonomy) to
    ``res``; return the lines to print."""
    lines = []
    decided = read_decided(predictions)
    if decided is not None:
        tags = sorted({t for v in truth.values() for t in v} | {t for v in decided.values() for t in v})
        d = res["decisions"] = decisions_report(decided, truth, tags)
        lines.append(
            f"decided tags: micro P {d['micro_precision']:.4f} R {d['micro_recall']:.4f} F1 {d['micro_f1']:.4f}"
            f" | macro P {d['macro_precision']:.4f} R {d['macro_recall']:.4f} F1 {d['macro_f1']:.4f}"
            f" | {d['tags_per_item']:.2f} tags per item"
        )
    if taxonomy is not None:
        res["per_group"] = per_group_report(preds, truth, decided, Taxonomy.from_file(taxonomy), top_k)
        for g, row in res["per_group"].items():
            f1 = f"  micro F1 {row['micro_f1']:.4f}  macro F1 {row['macro_f1']:.4f}" if "micro_f1" in row else ""
            lines.append(f"group {g}: {row['n_tags']} tags  GAP@{top_k} {row['gap']:.4f}  hit@1 {row['hit1']:.4f}{f1}")
    return lines


def add_group_tables(result: dict, taxonomy: Taxonomy, tags: list[str]) -> str:
    """``adtag ablate --taxonomy``: GAP@20 and hit@1 per group for every row of the ablation.

    Sets ``result["per_group"]`` ({row: {group: {gap, hit1}}}) and returns a Markdown table.
    """
    from adtag.metrics import per_group

    groups, names = taxonomy.group_index(tags)
    Y = result["truth"]
    rows = {}
    for key, scores in result["predictions"].items():
        pg = per_group(scores, Y, groups, names)
        rows[key] = {g: {"gap": round(v["gap"], 4), "hit1": round(v["hit1"], 4)} for g, v in pg.items()}
    result["per_group"] = rows
    live = [g for g in names if any(g in r for r in rows.values())]
    lines = [
        "## GAP@20 / hit@1 per taxonomy group",
        "",
        "| row | " + " | ".join(live) + " |",
        "|---|" + "---|" * len(live),
    ]
    for key, r in rows.items():
        cells = [f"{r[g]['gap']:.4f} / {r[g]['hit1']:.4f}" if g in r else "-" for g in live]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
