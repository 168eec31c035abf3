"""Quality on real multi-label data: adtag's ablation tables beside scikit-learn baselines.

Every number comes from the same outer 5-fold split per data set, pooled held-out predictions.

    python benchmarks/bench_quality.py [--sets 3sources,emotions,...] [--out benchmarks/results]
    python benchmarks/bench_quality.py --stack-only --sets yeast   # the stack column alone

``--stack-only`` fits the branches of each outer fold once (as ``run_ablation`` does: same folds,
seeds and configuration), caches their meta-features under ``$TMPDIR/adtag_bench_quality`` and
refits only the fusions on them: the quick loop for work on the stacker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
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
from adtag.models.fusions import create_fusion, mean_fusion  # noqa: E402
from adtag.models.meta_features import MetaFeatures  # noqa: E402
from adtag.models.tagger import TrainConfig, fuse_passes  # noqa: E402
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


def stack_only(name: str, outer: int = 5, seed: int = 0, fusions: tuple[str, ...] = ("stack", "paper")) -> dict:
    """The meta-feature fusions of ``bench`` on cached outer-fold meta-features (same folds and seeds)."""
    from adtag.models.tagger import Tagger

    items = LOADERS[name]()
    vocab = Vocabulary.from_items([it.tags for it in items])
    config = replace(TrainConfig(), seed=seed, fusion="mean", jobs=1)  # as run_ablation's folds
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    cache = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "adtag_bench_quality"
    cache.mkdir(parents=True, exist_ok=True)
    preds = {f: np.zeros_like(Y) for f in ("mean", *fusions)}
    cpu = dict.fromkeys(fusions, 0.0)
    for k, (tr, te) in enumerate(make_folds(len(items), outer, seed + 101)):
        f = cache / f"{name}_seed{seed}_fold{k}_kpass.npz"  # the test part in K passes, as adtag predict scores it
        if not f.is_file():
            tagger = Tagger(replace(config, seed=seed + k)).fit(
                [items[i] for i in tr], vocab, progress=False, log=lambda *_: None
            )
            a, b = tagger.meta_features_, tagger.meta_features([items[i] for i in te], passes=True)
            Pt = np.stack([m.P for m in b])
            np.savez(
                f, P=a.P, pr=a.present, ex=a.extras, Pt=Pt, prt=b[0].present, ext=b[0].extras, br=np.array(a.branches)
            )
        with np.load(f, allow_pickle=False) as z:
            br = [str(x) for x in z["br"]]
            mf_tr = MetaFeatures(z["P"], z["pr"], br, z["ex"])
            mf_te = [MetaFeatures(p, z["prt"], br, z["ext"]) for p in z["Pt"]]
        preds["mean"][te] = np.mean([mean_fusion(m.P, m.present) for m in mf_te], 0)
        for fu in fusions:
            t0 = time.process_time()
            preds[fu][te] = fuse_passes(create_fusion(fu, seed + k).fit(mf_tr, Y[tr]), mf_te)
            cpu[fu] += time.process_time() - t0
    gaps = {fu: round(gap_at_k(p, Y), 4) for fu, p in preds.items()}
    return {"dataset": name, "n_items": len(Y), "gap": gaps, "cpu_s": {k: round(v, 1) for k, v in cpu.items()}}


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
    ap.add_argument("--stack-only", action="store_true", help="only the stack/paper/mean columns, cached branches")
    args = ap.parse_args()
    runtime.configure(1)
    if args.stack_only:
        for name in args.sets.split(","):
            print(json.dumps(stack_only(name, seed=args.seed)), flush=True)
        return
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
