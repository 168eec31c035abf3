"""Ablation rows refitted on cached outer folds: each row's CPU-s and pooled GAP@20 per seed and setting.

``adtag ablate`` refits every row of every outer fold on that fold's branches; a row's settings can be
tried alone once the branches are cached (``cache``: ``ablation._branches`` for each outer fold of
``adtag ablate --seed N``, one pickle per seed in ``--dir``; scratch files, not model artefacts). ``rows``
then fits the chosen rows (key prefixes) as the ablation does (``ablation._rows`` / ``_row_job`` /
``_row``), one thread, on the code tree in ``PYTHONPATH``; ``--stackers`` replaces
``ablation.FAST_STACKERS`` (as ``run_ablation(stackers=...)``). BENCHMARKS.md 12t.

    python benchmarks/bench_ablate.py --one-fold   # writes a manifest under /tmp/bench-ablate-*/data
    python benchmarks/bench_ablate_rows.py cache MANIFEST 0,1,2 --dir /tmp/rows
    python benchmarks/bench_ablate_rows.py rows 0,1,2 fusion:paper --dir /tmp/rows --stackers '{"paper": {"n_bags": 2}}'
    python benchmarks/bench_ablate_rows.py rows 0 single --dir /tmp/rows --folds 0 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pickle
import pstats
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _setup() -> None:
    from adtag import runtime
    from adtag.engines.local import _keep_heap

    runtime.configure(1)
    _keep_heap()  # as in a worker process


def cache(manifest: Path, seeds: list[int], folder: Path) -> None:
    from adtag import ablation
    from adtag.data.manifest import load_manifest
    from adtag.data.vocab import Vocabulary
    from adtag.models.tagger import TrainConfig

    items = ablation._in_memory(load_manifest(manifest))
    vocab = Vocabulary.from_items([it.tags for it in items])
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:  # as run_ablation: outer folds from seed + 101, fold k's branches with seed + k
        config = replace(TrainConfig(), fusion="mean", seed=seed)
        outer = ablation.make_folds(len(items), 5, seed + 101)
        folds = [
            ablation._branches(items, Y, vocab, replace(config, jobs=1), tr, te, seed + k, True)
            for k, (tr, te) in enumerate(outer)
        ]
        order = sorted(folds[0]["mod_gap"], key=lambda m: -folds[0]["mod_gap"][m])
        with open(folder / f"folds_s{seed}.pkl", "wb") as f:
            pickle.dump({"folds": folds, "outer": outer, "Y": Y, "order": order, "config": config}, f)
        print(f"seed {seed}: {len(folds)} outer folds cached", flush=True)


def rows(seeds: list[int], want: list[str], folder: Path, stackers, folds: list[int], profile: bool) -> dict:
    from adtag import ablation
    from adtag.metrics import gap_at_k

    settings = ablation.FAST_STACKERS if stackers is None else stackers
    settings = {k: dict(v) for k, v in settings.items() if v}
    result: dict[str, dict] = {}
    for seed in seeds:
        with open(folder / f"folds_s{seed}.pkl", "rb") as f:
            d = pickle.load(f)
        preds: dict[str, dict] = {}
        cpu: dict[str, float] = {}
        for k in folds:
            fold = d["folds"][k]
            for row in ablation._rows(fold, d["order"], tuple(ablation.FUSIONS), d["config"], settings):
                if not any(row.key.startswith(w) for w in want):
                    continue
                job = ablation._row_job(fold, row)
                if profile:  # a first fit pays the imports; the profile is of the second (CPU time)
                    ablation._row(*job)
                    prof = cProfile.Profile(time.process_time)
                    prof.enable()
                scores, c = ablation._row(*job)
                if profile:
                    prof.disable()
                    print(f"== {row.key}, outer fold {k}: {c:.2f} CPU-s")
                    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
                cpu[row.key] = cpu.get(row.key, 0.0) + c
                preds.setdefault(row.key, {})[k] = (d["outer"][k][1], scores)
        for key, parts in preds.items():
            Y = d["Y"]
            if len(parts) == len(d["outer"]):  # pooled over the outer folds, as the ablation's tables
                pooled = np.zeros(Y.shape, np.float32)
                for te, s in parts.values():
                    pooled[te] = s
                gap = round(gap_at_k(pooled, Y), 4)
            else:
                gap = {k: round(gap_at_k(s, Y[te]), 4) for k, (te, s) in parts.items()}
            result.setdefault(key, {})[seed] = {"gap": gap, "cpu_s": round(cpu[key], 2)}
            print(seed, key, gap, round(cpu[key], 2), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("manifest", type=Path)
    c.add_argument("seeds")
    c.add_argument("--dir", type=Path, required=True)
    r = sub.add_parser("rows")
    r.add_argument("seeds")
    r.add_argument("rows", help="comma-separated row key prefixes, e.g. single,fusion:paper")
    r.add_argument("--dir", type=Path, required=True)
    r.add_argument("--stackers", type=json.loads, default=None)
    r.add_argument("--folds", default="0,1,2,3,4")
    r.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    _setup()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.cmd == "cache":
        cache(args.manifest, seeds, args.dir)
    else:
        folds = [int(k) for k in args.folds.split(",")]
        out = rows(seeds, args.rows.split(","), args.dir, args.stackers, folds, args.profile)
        print(json.dumps({"stackers": args.stackers, "rows": out}))


if __name__ == "__main__":
    main()
