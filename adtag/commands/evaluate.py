"""adtag evaluate: GAP@k (official), hit@1, mAP, per-tag AP; decided tags' precision/recall/F1; per group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from adtag.data.predictions import read_predictions, read_truth
from adtag.data.taxonomy import Taxonomy
from adtag.decisions.io import read_decided
from adtag.errors import AdtagError
from adtag.metrics import decision_scores, gap_ranked


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score predictions against ground truth (GAP@k, hit@1, mAP)",
        description=(
            "GAP@k exactly as the YouTube-8M / TAAC evaluator (each item's top-k pooled; every true pair "
            "counts in the denominator), hit@1 (the paper's accuracy), macro mAP and per-tag AP. TRUTH is "
            "a manifest, a TAAC ground-truth JSON or a tagging_info.txt."
        ),
    )
    p.add_argument("predictions", type=Path, help="predictions JSON (TAAC submission format)")
    p.add_argument("truth", type=Path, help="manifest.jsonl, TAAC ground-truth JSON or tagging_info.txt")
    p.add_argument("--top-k", type=int, default=20, help="k of GAP@k (default: 20)")
    p.add_argument("--json", action="store_true", help="print all metrics, per-tag AP included, as JSON")
    p.add_argument(
        "--taxonomy",
        type=Path,
        default=None,
        help="CSV tag,group[,parent] or TAAC label_dimension.csv: adds GAP, hit@1 and F1 per group",
    )
    return p


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


def evaluate(preds: dict[str, list[tuple[str, float]]], truth: dict[str, list[str]], top_k: int = 20) -> dict:
    ids = [k for k in truth if truth[k]]
    covered = [k for k in ids if k in preds]
    hits = [bool(preds[k]) and max(preds[k], key=lambda p: p[1])[0] in set(truth[k]) for k in covered]
    tags = sorted({t for k in ids for t in truth[k]})
    ap = {}
    for t in tags:
        scores = np.array([dict(preds.get(k, [])).get(t, -np.inf) for k in ids])
        true = np.array([t in truth[k] for k in ids])
        order = np.argsort(-scores, kind="stable")
        h = true[order] & np.isfinite(scores[order])
        prec = np.cumsum(h) / np.arange(1, len(h) + 1)
        ap[t] = float(np.sum(prec * h) / true.sum())
    return {
        "gap": gap_ranked(preds, {k: truth[k] for k in ids}, top_k),
        "top_k": top_k,
        "hit1": float(np.mean(hits)) * len(covered) / len(ids) if ids else 0.0,
        "map": float(np.mean(list(ap.values()))) if ap else 0.0,
        "n_items": len(ids),
        "n_predicted": len(covered),
        "per_tag_ap": ap,
    }


def run(args: argparse.Namespace) -> int:
    preds = read_predictions(args.predictions)
    truth = read_truth(args.truth)
    if not any(truth.values()):
        raise AdtagError(f"{args.truth}: no item with tags")
    res = evaluate(preds, truth, args.top_k)
    decided = read_decided(args.predictions)
    if decided is not None:
        tags = sorted({t for v in truth.values() for t in v} | {t for v in decided.values() for t in v})
        res["decisions"] = decisions_report(decided, truth, tags)
    if args.taxonomy is not None:
        res["per_group"] = per_group_report(preds, truth, decided, Taxonomy.from_file(args.taxonomy), args.top_k)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        print(f"GAP@{args.top_k}  {res['gap']:.4f}")
        print(f"hit@1   {res['hit1']:.4f}")
        print(f"mAP     {res['map']:.4f}")
        print(f"items   {res['n_predicted']} predicted of {res['n_items']} in truth")
        if "decisions" in res:
            d = res["decisions"]
            print(
                f"decided tags: micro P {d['micro_precision']:.4f} R {d['micro_recall']:.4f} F1 {d['micro_f1']:.4f}"
                f" | macro P {d['macro_precision']:.4f} R {d['macro_recall']:.4f} F1 {d['macro_f1']:.4f}"
                f" | {d['tags_per_item']:.2f} tags per item"
            )
        for g, row in res.get("per_group", {}).items():
            f1 = f"  micro F1 {row['micro_f1']:.4f}  macro F1 {row['macro_f1']:.4f}" if "micro_f1" in row else ""
            print(f"group {g}: {row['n_tags']} tags  GAP@{args.top_k} {row['gap']:.4f}  hit@1 {row['hit1']:.4f}{f1}")
    return 0
