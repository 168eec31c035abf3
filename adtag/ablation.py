"""The paper's three tables on any labelled item set, with an outer cross-validation.

Per outer fold: fit the branches K-fold on the training part (their out-of-fold
meta-features), then score the test part with
  1. each single modality (a stacker over that modality's branches),
  2. growing combinations of modalities (best single first),
  3. every fusion strategy: the default stacker, the paper's DNN stacker, plain averaging, the
     best single branch, early-fusion LR (the joint branch), and the concat / sum / max /
     attention networks.
Test predictions are pooled over outer folds; GAP@20 and hit@1 come from the pooled scores.
Branches are fitted once per outer fold and reused by every row (the meta-feature cache).
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from adtag.data.manifest import Item
from adtag.data.vocab import Vocabulary
from adtag.engines.local import run_parallel
from adtag.errors import AdtagError
from adtag.metrics import gap_at_k, hit_at_1, per_tag_ap
from adtag.models.branch import make_folds
from adtag.models.fusions import FUSIONS, NotApplicable, create_fusion, mean_fusion
from adtag.models.meta_features import MapFn, MetaFeatures
from adtag.models.tagger import Tagger, TrainConfig


def _stack_subset(tr: MetaFeatures, te: MetaFeatures, Y: np.ndarray, cols: list[int], extras: bool, seed: int):
    st = create_fusion("stack", seed).fit(tr.select(cols, extras), Y)
    return st.predict_proba(te.select(cols, extras))


def _outer_fold(
    items: list[Item], Y: np.ndarray, vocab: Vocabulary, config: TrainConfig, tr, te, seed: int, fusions
) -> dict[str, Any]:
    """One outer fold, part 1: branches K-fold, then single modalities and every fusion row."""
    items_tr = [items[i] for i in tr]
    items_te = [items[i] for i in te]
    tagger = Tagger(replace(config, seed=seed)).fit(items_tr, vocab, progress=False, log=lambda *_: None)
    mf_tr, mf_te, Ytr = tagger.meta_features_, tagger.meta_features(items_te), Y[tr]
    mods = [s.name for s in tagger.specs_]
    cols_of = {m: [b for b, nm in enumerate(mf_tr.branches) if nm.split("/")[0] == m] for m in mods}
    rows: dict[str, np.ndarray] = {}
    # 1. single modalities
    mod_gap = {}
    for m in mods:
        cols = cols_of[m]
        if not cols:
            continue
        rows[f"single:{m}"] = _stack_subset(mf_tr, mf_te, Ytr, cols, m == "extra", seed)
        present = mf_tr.present[:, cols[0]]
        sub = mf_tr.select(cols)
        mod_gap[m] = gap_at_k(mean_fusion(sub.P, sub.present)[present], Ytr[present]) if present.any() else 0
    # 3. fusion strategies, from the fusion registry
    feats = None
    for f in fusions:
        fusion = create_fusion(f, seed, **config.stacker)
        if FUSIONS[f].on == "features":
            if feats is None:  # featurize once per fold, shared by the fusion networks
                feats = (tagger.features(items_tr), tagger.features(items_te))
            x_tr, x_te = feats
        else:
            x_tr, x_te = mf_tr, mf_te
        try:
            rows[f"fusion:{f}"] = fusion.fit(x_tr, Ytr).predict_proba(x_te)
        except NotApplicable:  # e.g. early-fusion-lr without a joint branch
            continue
    kinds = {s.name: s.kind for s in tagger.specs_}
    return {"rows": rows, "mod_gap": mod_gap, "kinds": kinds, "cols_of": cols_of, "mf": (mf_tr, mf_te)}


def _combinations(part: dict[str, Any], Ytr: np.ndarray, order: list[str], seed: int) -> dict[str, np.ndarray]:
    """One outer fold, part 2: growing combinations of modalities in the given order."""
    mf_tr, mf_te = part["mf"]
    cols_of = part["cols_of"]
    rows = {}
    for j in range(2, len(order) + 1):
        subset = order[:j]
        if not any(cols_of.get(m) for m in subset):
            continue
        cols = [c for m in subset for c in cols_of.get(m, [])]  # a fold may lack a rare modality
        rows["combo:" + "+".join(subset)] = _stack_subset(mf_tr, mf_te, Ytr, cols, "extra" in subset, seed)
    return rows


def run_ablation(
    items: list[Item],
    vocab: Vocabulary | None = None,
    config: TrainConfig | None = None,
    outer_folds: int = 5,
    fusions: tuple[str, ...] = tuple(FUSIONS),
    progress: bool = True,
    dataset: str = "",
    fold_map_fn: MapFn | None = None,
) -> dict[str, Any]:
    """Outer folds run side by side in ``config.jobs`` worker processes (each fits its branches
    in-process): the stackers and fusion networks of every row then share the cores too, not
    only the branches. ``fold_map_fn(fn, jobs)`` replaces those processes (``--engine ray``: one
    Ray task per outer fold)."""
    t0 = time.time()
    unknown = [f for f in fusions if f not in FUSIONS]
    if unknown:
        raise AdtagError(f"unknown fusions {unknown}; choose from {', '.join(FUSIONS)}")
    config = replace(config or TrainConfig(), fusion="mean")  # each row fits its own fusion below
    vocab = vocab or Vocabulary.from_items([it.tags for it in items])
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    n, L = Y.shape
    outer = make_folds(n, outer_folds, config.seed + 101)
    preds: dict[str, np.ndarray] = {}
    inner = replace(config, jobs=1)
    jobs = [(items, Y, vocab, inner, tr, te, config.seed + k, tuple(fusions)) for k, (tr, te) in enumerate(outer)]
    map_fn = fold_map_fn or partial(run_parallel, n_jobs=config.jobs)
    parts = list(tqdm(map_fn(_outer_fold, jobs), total=len(jobs), desc="outer folds", disable=not progress))
    # 2. growing combinations, ordered by the first fold's out-of-fold single-modality GAP
    mod_gap = parts[0]["mod_gap"]
    order = sorted(mod_gap, key=lambda m: -mod_gap[m])
    combo_jobs = [(p, Y[tr], order, config.seed + k) for k, (p, (tr, _)) in enumerate(zip(parts, outer, strict=True))]
    combos = list(map_fn(_combinations, combo_jobs))
    kinds: dict[str, str] = {}
    for prefix in ("single:", "combo:", "fusion:"):
        for (_, te), part, combo in zip(outer, parts, combos, strict=True):
            for name, scores in {**part["rows"], **combo}.items():
                if name.startswith(prefix):
                    preds.setdefault(name, np.zeros((n, L), np.float32))[te] = scores
    for part in parts:
        kinds.update(part["kinds"])

    def row(name: str) -> dict[str, Any]:
        s = preds[name]
        return {"name": name.split(":", 1)[1], "gap": round(gap_at_k(s, Y), 4), "hit1": round(hit_at_1(s, Y), 4)}

    tables = {
        "single": [row(k) for k in preds if k.startswith("single:")],
        "combinations": [row(k) for k in preds if k.startswith("combo:")],
        "fusion": [row(k) for k in preds if k.startswith("fusion:")],
    }
    for r in tables["single"]:
        r["kind"] = kinds.get(r["name"], "")
    ap = per_tag_ap(preds["fusion:stack"], Y) if "fusion:stack" in preds else np.full(L, np.nan)
    return {
        "dataset": dataset,
        "n_items": n,
        "n_tags": L,
        "folds": outer_folds,
        "inner_folds": config.folds,
        "tables": tables,
        "per_tag_ap": {t: (None if np.isnan(a) else round(float(a), 4)) for t, a in zip(vocab.tags, ap, strict=True)},
        "seconds": round(time.time() - t0, 1),
        "predictions": preds,
        "truth": Y,
    }
