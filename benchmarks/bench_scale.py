"""Training and prediction speed at competition scale, and peak memory.

Synthetic but shaped like the target: 8,000 training items x 150 tags x 5 text/tabular
modalities (title and keyword text over a 6,000-word vocabulary, two embedding vectors, extras),
5-fold meta-features, the default stacker. Then prediction of 5,000 new items from features.

    python benchmarks/bench_scale.py [--items 8000] [--tags 150] [--predict 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adtag import runtime  # noqa: E402
from adtag.data.manifest import Item  # noqa: E402
from adtag.metrics import gap_at_k  # noqa: E402
from adtag.models.tagger import Tagger, TrainConfig  # noqa: E402


def make_items(n: int, n_tags: int, seed: int) -> list[Item]:
    world = np.random.default_rng(1234)
    vocab = [f"w{i}" for i in range(6000)]
    tag_words = world.integers(0, len(vocab), size=(n_tags, 8))
    emb1 = world.normal(size=(n_tags, 64))
    emb2 = world.normal(size=(n_tags, 32))
    pop = world.dirichlet(np.ones(n_tags) * 0.5)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        k = int(rng.integers(3, 15))
        tags = rng.choice(n_tags, size=k, replace=False, p=pop)
        title = [vocab[w] for t in tags for w in rng.choice(tag_words[t], 2) if rng.random() < 0.5]
        title += [vocab[w] for w in rng.integers(0, len(vocab), 6)]
        kw = [vocab[w] for t in tags for w in rng.choice(tag_words[t], 1) if rng.random() < 0.4]
        items.append(
            Item(
                id=str(i),
                tags=[f"tag{t}" for t in tags],
                text={"title": " ".join(rng.permutation(title)), "keywords": " ".join(kw) or "none"},
                features={
                    "emb1": (emb1[tags].mean(0) + rng.normal(size=64) * 1.5).astype(np.float32),
                    "emb2": (emb2[tags].mean(0) + rng.normal(size=32) * 2.0).astype(np.float32),
                },
                extra={
                    "duration": float(rng.integers(5, 120)),
                    "width": 720.0,
                    "height": float(rng.choice([720, 1280])),
                },
            )
        )
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8000)
    ap.add_argument("--tags", type=int, default=150)
    ap.add_argument("--predict", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    runtime.configure(1)
    load_before = os.getloadavg()[0]
    train = make_items(args.items, args.tags, seed=0)
    test = make_items(args.predict, args.tags, seed=1)
    t_train = time.perf_counter()
    c0 = time.process_time()
    stamps: list[float] = []
    tagger = Tagger(TrainConfig(folds=5)).fit(train, progress=False, log=lambda *_: stamps.append(time.perf_counter()))
    train_s, train_cpu = time.perf_counter() - t_train, time.process_time() - c0
    tagger.predict_proba(test[:100])  # warm-up (jieba, torch kernels)
    t0 = time.perf_counter()
    scores = tagger.predict_proba(test)
    pred_s = time.perf_counter() - t0
    y = tagger.vocab_.encode([it.tags for it in test])
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    res = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.platform()}, {len(os.sched_getaffinity(0))} cores",
        "items": args.items,
        "tags": args.tags,
        "modalities": 5,
        "train_seconds": round(train_s, 1),
        "train_cpu_seconds_main_process": round(train_cpu, 1),
        "branches_seconds": round(stamps[len(tagger.branch_specs()) - 1] - t_train, 1),
        "predict_items_per_second": round(args.predict / pred_s),
        "peak_memory_gib": round(peak_gib, 2),
        "load_average_before": load_before,
        "test_gap": round(gap_at_k(scores, y), 4),
        "branch_oof_gap": tagger.metrics_["branch_oof_gap"],
        "mean_oof_gap": tagger.metrics_["mean_oof_gap"],
    }
    print(json.dumps(res, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
