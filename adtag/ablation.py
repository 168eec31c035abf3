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
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from adtag.data.manifest import Item
from adtag.data.vocab import Vocabulary
from adtag.metrics import gap_at_k, hit_at_1, per_tag_ap
from adtag.models.branch import JOINT, make_folds
from adtag.models.fusion import FUSIONS, FusionTagger
from adtag.models.stacker import Stacker, mean_fusion
from adtag.models.tagger import Tagger, TrainConfig

FUSION_ROWS = ("stack", "paper", "mean", "best-branch", "early-fusion-lr") + FUSIONS


def _stack_subset(P, present, extras, Y, cols, use_extras, seed, kind="tagwise"):
    ex = extras if use_extras else np.zeros((len(Y), 0), np.float32)
    return Stacker(kind=kind, seed=seed).fit(P[:, cols], present[:, cols], ex, Y)


def run_ablation(
    items: list[Item],
    vocab: Vocabulary | None = None,
    config: TrainConfig | None = None,
    outer_folds: int = 5,
    fusions: tuple[str, ...] = FUSION_ROWS,
    progress: bool = True,
    dataset: str = "",
) -> dict[str, Any]:
    t0 = time.time()
    config = replace(config or TrainConfig(), fusion="stack")
    vocab = vocab or Vocabulary.from_items([it.tags for it in items])
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    n, L = Y.shape
    outer = make_folds(n, outer_folds, config.seed + 101)
    preds: dict[str, np.ndarray] = {}
    order: list[str] | None = None
    kinds: dict[str, str] = {}

    def put(name: str, te: np.ndarray, scores: np.ndarray) -> None:
        preds.setdefault(name, np.zeros((n, L), np.float32))[te] = scores

    for k, (tr, te) in enumerate(tqdm(outer, desc="outer folds", disable=not progress)):
        items_tr = [items[i] for i in tr]
        items_te = [items[i] for i in te]
        tagger = Tagger(replace(config, seed=config.seed + k)).fit(items_tr, vocab, progress=False, log=lambda *_: None)
        Ptr, prtr, extr = tagger.oof_["P"], tagger.oof_["present"], tagger.oof_["extras"]
        Ytr = Y[tr]
        Pte, prte, exte = tagger.branch_probas(items_te)
        names = [s.name for s in tagger.branch_specs()]
        mods = [s.name for s in tagger.specs_]
        kinds = {s.name: s.kind for s in tagger.specs_}
        cols_of = {m: [b for b, nm in enumerate(names) if nm.split("/")[0] == m] for m in mods}
        seed = config.seed + k
        # 1. single modalities
        mod_gap = {}
        for m in mods:
            cols = cols_of[m]
            if not cols:
                continue
            st = _stack_subset(Ptr, prtr, extr, Ytr, cols, m == "extra", seed)
            put(f"single:{m}", te, st.predict_proba(Pte[:, cols], prte[:, cols], exte if m == "extra" else exte[:, :0]))
            rows = prtr[:, cols[0]]
            mod_gap[m] = gap_at_k(mean_fusion(Ptr[:, cols], prtr[:, cols])[rows], Ytr[rows]) if rows.any() else 0
        # 2. growing combinations, ordered by the first fold's out-of-fold single-modality GAP
        if order is None:
            order = sorted(mod_gap, key=lambda m: -mod_gap[m])
        for j in range(2, len(order) + 1):
            subset = order[:j]
            if not any(cols_of.get(m) for m in subset):
                continue
            cols = [c for m in subset for c in cols_of.get(m, [])]  # a fold may lack a rare modality
            use_ex = "extra" in subset
            st = _stack_subset(Ptr, prtr, extr, Ytr, cols, use_ex, seed)
            put(
                "combo:" + "+".join(subset),
                te,
                st.predict_proba(Pte[:, cols], prte[:, cols], exte if use_ex else exte[:, :0]),
            )
        # 3. fusion strategies
        all_cols = list(range(len(names)))
        feats = None
        for f in fusions:
            if f == "stack":
                put("fusion:stack", te, tagger.stacker_.predict_proba(Pte, prte, exte))
            elif f == "paper":
                st = _stack_subset(Ptr, prtr, extr, Ytr, all_cols, True, seed, kind="paper")
                put("fusion:paper", te, st.predict_proba(Pte, prte, exte))
            elif f == "mean":
                put("fusion:mean", te, mean_fusion(Pte, prte))
            elif f == "best-branch":
                gaps = tagger.metrics_["branch_oof_gap"]
                best = max((nm for nm in names if gaps.get(nm) is not None), key=lambda nm: gaps[nm])
                put("fusion:best-branch", te, Pte[:, names.index(best)])
            elif f == "early-fusion-lr" and f"{JOINT}/lr" in names:
                put("fusion:early-fusion-lr", te, Pte[:, names.index(f"{JOINT}/lr")])
            elif f in FUSIONS:
                if feats is None:  # featurize once per fold, shared by the four fusion networks
                    feats = (tagger._featurize(items_tr), tagger._featurize(items_te))
                (btr, mtr), (bte, mte) = feats
                ptr_m = np.stack([mtr[m] for m in mods], 1)
                pte_m = np.stack([mte[m] for m in mods], 1)
                ft = FusionTagger(f, seed=seed).fit([btr[m] for m in mods], ptr_m, Ytr)
                put(f"fusion:{f}", te, ft.predict_proba([bte[m] for m in mods], pte_m))

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
