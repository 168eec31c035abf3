"""Quality on real multi-label data: adtag's ablation tables beside scikit-learn baselines.

Every number comes from the same outer 5-fold split per data set, pooled held-out predictions.

    python benchmarks/bench_quality.py [--sets 3sources,emotions,...] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adtag import runtime  # noqa: E402
from adtag.ablation import run_ablation  # noqa: E402
from adtag.data.vocab import Vocabulary  # noqa: E402
from adtag.metrics import gap_at_k, hit_at_1  # noqa: E402
from adtag.models.branch import make_folds  # noqa: E402
from adtag.models.tagger import TrainConfig  # noqa: E402
from benchmarks.datasets import LOADERS  # noqa: E402
from benchmarks.sklearn_baselines import sklearn_predictions  # noqa: E402

DEFAULT_SETS = ["3sources", "emotions", "yeast", "scene", "birds", "tnews"]


def bench(name: str, outer: int = 5, seed: int = 0) -> dict:
    items = LOADERS[name]()
    vocab = Vocabulary.from_items([it.tags for it in items])
    t0 = time.time()
    res = run_ablation(items, vocab, replace(TrainConfig(), seed=seed), outer_folds=outer, progress=False, dataset=name)
    t_adtag = time.time() - t0
    Y = res["truth"]
    folds = make_folds(len(items), outer, seed + 101)  # the split run_ablation used
    skl: dict[str, np.ndarray] = {}
    t0 = time.time()
    for tr, te in folds:
        preds = sklearn_predictions([items[i] for i in tr], Y[tr], [items[i] for i in te], seed)
        for k, v in preds.items():
            skl.setdefault(k, np.zeros_like(Y))[te] = v
    t_skl = time.time() - t0
    rows = {r["name"]: r for r in res["tables"]["fusion"]}
    for k, v in skl.items():
        rows[k] = {"name": k, "gap": round(gap_at_k(v, Y), 4), "hit1": round(hit_at_1(v, Y), 4)}
    singles = res["tables"]["single"]
    best_single = max(singles, key=lambda r: r["gap"])
    return {
        "dataset": name,
        "n_items": res["n_items"],
        "n_tags": res["n_tags"],
        "modalities": [r["name"] for r in singles],
        "single": singles,
        "combinations": res["tables"]["combinations"],
        "fusion": list(rows.values()),
        "best_single": best_single,
        "seconds_adtag_ablation": round(t_adtag, 1),
        "seconds_sklearn": round(t_skl, 1),
    }


def to_markdown(results: list[dict]) -> str:
    cols = [
        "stack",
        "paper",
        "mean",
        "best-branch",
        "early-fusion-lr",
        "concat",
        "sum",
        "max",
        "attention",
        "sklearn-concat-lr",
        "sklearn-stacking",
    ]
    head = "| data set | items | tags | best single | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (4 + len(cols))]
    for r in results:
        f = {x["name"]: x for x in r["fusion"]}
        best = max(x["gap"] for x in r["fusion"])
        cells = []
        for c in cols:
            if c not in f:
                cells.append("–")
                continue
            g = f[c]["gap"]
            cells.append(f"**{g:.4f}**" if g == best else f"{g:.4f}")
        bs = r["best_single"]
        lines.append(
            f"| {r['dataset']} | {r['n_items']} | {r['n_tags']} | {bs['gap']:.4f} ({bs['name']}) | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(DEFAULT_SETS))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    runtime.configure(1)
    results = []
    for name in args.sets.split(","):
        t = time.time()
        r = bench(name, seed=args.seed)
        results.append(r)
        print(f"{name}: {time.time() - t:.0f}s", flush=True)
        print(to_markdown([r]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "cpus": 2}
    (args.out / "quality.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    (args.out / "quality.md").write_text(to_markdown(results))
    print(to_markdown(results))


if __name__ == "__main__":
    main()
