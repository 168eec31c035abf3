"""adtag evaluate: GAP@k (official), hit@1, mAP, per-tag AP; decided tags' P/R/F1; per group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adtag.errors import AdtagError


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


def evaluate(preds: dict[str, list[tuple[str, float]]], truth: dict[str, list[str]], top_k: int = 20) -> dict:
    """Every figure ``adtag evaluate`` prints; mAP is macro over the tags in ``truth``, from the
    ranked lists given (a tag missing from an item's list counts as not retrieved)."""
    import numpy as np

    from adtag.metrics import gap_ranked

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
    from adtag.data.predictions import read_predictions, read_truth

    preds = read_predictions(args.predictions)
    truth = read_truth(args.truth)
    if not any(truth.values()):
        raise AdtagError(f"{args.truth}: no item with tags")
    res = evaluate(preds, truth, args.top_k)
    from adtag.decisions.evaluation import extend_evaluation

    extra = extend_evaluation(res, args.predictions, args.taxonomy, preds, truth, args.top_k)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
    else:
        # Each figure says what it is computed from: the ranked lists in the file, never more.
        print(f"GAP@{args.top_k}  {res['gap']:.4f}  (each item's top {args.top_k} tags, pooled)")
        print(f"hit@1   {res['hit1']:.4f}  (share of items whose first tag is true)")
        print(
            f"mAP     {res['map']:.4f}  (macro over the {len(res['per_tag_ap'])} tags in the truth, "
            "from the ranked lists in the file)"
        )
        print(f"items   {res['n_predicted']} predicted of {res['n_items']} in truth")
        for line in extra:
            print(line)
    return 0
