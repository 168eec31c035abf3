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

Maps over worker processes: the outer folds' branches but the last fold's, then that fold's branches
beside every row of the others as a job of its own (dearest first), then its rows, so that both
workers stay busy to the end.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from adtag.data.manifest import Item
from adtag.data.modalities import load_array
from adtag.data.vocab import Vocabulary
from adtag.engines.local import run_parallel
from adtag.errors import AdtagError
from adtag.metrics import gap_at_k, hit_at_1, per_tag_ap
from adtag.models.branch import make_folds
from adtag.models.fusions import FUSIONS, NotApplicable, create_fusion, mean_fusion
from adtag.models.meta_features import MapFn
from adtag.models.tagger import Tagger, TrainConfig, fuse_passes

# Stacker options, added to ``config.stacker``, of the rows other than the headline one (Table 3's
# "stack": always the default stacker, as ``adtag train`` fits it): "single" (Table 1), "combinations"
# (Table 2) and a fusion's name (e.g. "paper"). Cheaper configurations, measured within 0.3 GAP
# points of the default stacker's rows (BENCHMARKS.md 12g, 12t); ``stackers={}`` fits every row by default.
FAST_STACKERS: dict[str, dict[str, Any]] = {
    # its rungs "mean" and "linear" (no net): a modality's 2 branches; 2 internal folds only choose the rung
    # (the linear one is refitted on every item): the same rows as 5 (BENCHMARKS.md 12t), 1.9x cheaper
    "single": {"max_epochs": 0, "n_bags": 2},
    "combinations": {"n_bags": 2, "wide": 0},  # 2 internal folds (4 nets, not 10), no wide part
    "paper": {"lr": 3e-3, "n_bags": 2},  # 2 nets, not 3, at 3x the learning rate: 0.56x CPU (BENCHMARKS.md 12t)
}


class Row(NamedTuple):
    """One table row of one outer fold: its key (``single:M``, ``combo:A+B``, ``fusion:F``), the fusion it
    fits, the branch columns it reads (None: all meta-features, or the features), extras or not, stacker options."""

    key: str
    fusion: str
    cols: list[int] | None
    extras: bool
    options: dict[str, Any]


def row_options(stackers: dict[str, dict[str, Any]], config: TrainConfig, table: str) -> dict[str, Any]:
    """The stacker options of one table's rows (``table``: "single", "combinations" or a fusion)."""
    return dict(config.stacker) if table == "stack" else {**config.stacker, **stackers.get(table, {})}


IN_MEMORY_BYTES = 256 << 20  # feature files up to this total are read once, not once per outer fold


def _in_memory(items: list[Item]) -> list[Item]:
    """The items with their feature files read into arrays (checked as training reads them), if they are
    small: every outer fold's job then reads memory, not 4 x (items) files twice over (BENCHMARKS.md 12q)."""
    paths = [p for it in items for p in it.features.values() if isinstance(p, Path)]
    if not paths or sum(p.stat().st_size if p.is_file() else 0 for p in paths) > IN_MEMORY_BYTES:
        return items
    loaded = [
        {k: load_array(v, it.id, k) if isinstance(v, Path) else v for k, v in it.features.items()} for it in items
    ]
    return [replace(it, features=f) for it, f in zip(items, loaded, strict=True)]


def _branches(
    items: list[Item], Y: np.ndarray, vocab: Vocabulary, config: TrainConfig, tr, te, seed: int, features: bool
) -> dict[str, Any]:
    """One outer fold, stage 1: its branches K-fold (meta-features), and the featurized items if a
    fusion network needs them."""
    t0 = time.process_time()
    items_tr = [items[i] for i in tr]
    items_te = [items[i] for i in te]
    tagger = Tagger(replace(config, seed=seed)).fit(items_tr, vocab, progress=False, log=lambda *_: None)
    # the test part as ``adtag predict`` scores it: K passes, each fusion's outputs averaged (``_row``)
    mf_tr, mf_te, Ytr = tagger.meta_features_, tagger.meta_features(items_te, passes=True), Y[tr]
    mods = [s.name for s in tagger.specs_]
    cols_of = {m: [b for b, nm in enumerate(mf_tr.branches) if nm.split("/")[0] == m] for m in mods}
    mod_gap = {}
    for m in mods:
        cols = cols_of[m]
        if cols:
            present = mf_tr.present[:, cols[0]]
            sub = mf_tr.select(cols)
            mod_gap[m] = gap_at_k(mean_fusion(sub.P, sub.present)[present], Ytr[present]) if present.any() else 0
    feats = (tagger.features(items_tr), tagger.features(items_te)) if features else None
    return {
        "mf": (mf_tr, mf_te),
        "feats": feats,
        "Ytr": Ytr,
        "seed": seed,
        "cols_of": cols_of,
        "mod_gap": mod_gap,
        "kinds": {s.name: s.kind for s in tagger.specs_},
        "cpu_s": time.process_time() - t0,
    }


def _inputs(fold: dict[str, Any], row: Row) -> tuple[Any, Any]:
    """A row's training and test inputs: some branches' meta-features, all of them, or the features."""
    mf_tr, mf_te = fold["mf"]
    if row.cols is not None:
        return mf_tr.select(row.cols, row.extras), [m.select(row.cols, row.extras) for m in mf_te]
    return fold["feats"] if FUSIONS[row.fusion].on == "features" else (mf_tr, mf_te)


def _row(data: dict[str, Any], fusion: str, options: dict[str, Any]) -> tuple[np.ndarray | None, float]:
    """One outer fold, stage 2: one table row fitted on the fold's training part (``data``: x_tr, x_te,
    Ytr, seed); the scores of its test part (None where the fusion does not apply) and the CPU-s it took."""
    t0 = time.process_time()
    try:
        fitted = create_fusion(fusion, data["seed"], **options).fit(data["x_tr"], data["Ytr"])
        x_te = data["x_te"]  # the K passes of the meta-features (a list), or the features
        scores = fuse_passes(fitted, x_te) if isinstance(x_te, list) else fitted.predict_proba(x_te)
    except NotApplicable:  # e.g. early-fusion-lr without a joint branch
        scores = None
    return scores, time.process_time() - t0


def _row_job(fold: dict[str, Any], row: Row) -> tuple:
    """The arguments of ``_row`` for one row of one fold (only the inputs that row needs travel)."""
    x_tr, x_te = _inputs(fold, row)
    return ({"x_tr": x_tr, "x_te": x_te, "Ytr": fold["Ytr"], "seed": fold["seed"]}, row.fusion, row.options)


def _call(fn, *args: Any) -> Any:
    """One job of a map that mixes a fold's branches and other folds' rows."""
    return fn(*args)


def _rows(fold: dict[str, Any], order: list[str], fusions, config: TrainConfig, stackers: dict) -> list[Row]:
    """The fold's rows, Tables 1, 2 and 3 in order."""
    cols_of, rows = fold["cols_of"], []
    single, combos = row_options(stackers, config, "single"), row_options(stackers, config, "combinations")
    for m in fold["mod_gap"]:  # 1. single modalities
        rows.append(Row(f"single:{m}", "stack", cols_of[m], m == "extra", single))
    for j in range(2, len(order) + 1):  # 2. growing combinations
        subset = order[:j]
        cols = [c for m in subset for c in cols_of.get(m, [])]  # a fold may lack a rare modality
        if cols:
            rows.append(Row("combo:" + "+".join(subset), "stack", cols, "extra" in subset, combos))
    for f in fusions:  # 3. fusion strategies, from the fusion registry
        rows.append(Row(f"fusion:{f}", f, None, True, row_options(stackers, config, f)))
    return rows


def _cost(row: Row, n_branches: int) -> float:
    """A row's rough cost (about CPU-s on 400 items x 9 branches x 82 tags), to start the dearest jobs
    first: the cheap ones then fill the gaps at the end, and both workers stay busy to the end."""
    fusion, cols, options = row.fusion, row.cols, row.options
    if fusion == "paper":
        return 10.0 * (0.55 if (options.get("n_bags") or 3) <= 2 else 1.0)
    if fusion != "stack":
        return 1.0 if FUSIONS[fusion].on == "features" else 0.0
    share = len(cols) / max(n_branches, 1) if cols is not None else 1.0
    cheaper = 0.1 if options.get("max_epochs") == 0 else 0.3 if (options.get("n_bags") or 5) <= 2 else 1.0
    return 10.0 * share * cheaper


def run_ablation(
    items: list[Item],
    vocab: Vocabulary | None = None,
    config: TrainConfig | None = None,
    outer_folds: int = 5,
    fusions: tuple[str, ...] = tuple(FUSIONS),
    progress: bool = True,
    dataset: str = "",
    fold_map_fn: MapFn | None = None,
    stackers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Outer folds' branches, then every row of every fold, as jobs in ``config.jobs`` worker
    processes (each job one thread). ``fold_map_fn(fn, jobs)`` replaces those processes
    (``--engine ray``: one Ray task per job). ``stackers``: the stacker options of the rows other
    than the headline "stack" one, by table (default :data:`FAST_STACKERS`; ``{}``: all default)."""
    t0 = time.time()
    unknown = [f for f in fusions if f not in FUSIONS]
    if unknown:
        raise AdtagError(f"unknown fusions {unknown}; choose from {', '.join(FUSIONS)}")
    stackers = {k: dict(v) for k, v in (FAST_STACKERS if stackers is None else stackers).items() if v}
    config = replace(config or TrainConfig(), fusion="mean")  # each row fits its own fusion below
    vocab = vocab or Vocabulary.from_items([it.tags for it in items])
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    n, L = Y.shape
    outer = make_folds(n, outer_folds, config.seed + 101)
    inner = replace(config, jobs=1)
    need_feats = any(FUSIONS[f].on == "features" for f in fusions)
    map_fn = fold_map_fn or partial(run_parallel, n_jobs=config.jobs)
    loaded = _in_memory(items)
    jobs = [(loaded, Y, vocab, inner, tr, te, config.seed + k, need_feats) for k, (tr, te) in enumerate(outer)]
    head = jobs[:-1] or jobs  # the last fold's branches run beside the other folds' rows: no worker idles
    folds = list(tqdm(map_fn(_branches, head), total=len(head), desc="branches", disable=not progress))
    # growing combinations, ordered by the first fold's out-of-fold single-modality GAP
    mod_gap = folds[0]["mod_gap"]
    order = sorted(mod_gap, key=lambda m: -mod_gap[m])

    def tasks_of(ks: range) -> list[tuple[int, Row]]:  # these folds' rows, dearest first
        tasks = [(k, r) for k in ks for r in _rows(folds[k], order, fusions, config, stackers)]
        return sorted(tasks, key=lambda t: -_cost(t[1], len(folds[t[0]]["mf"][0].branches)))

    tasks, last = tasks_of(range(len(head))), len(jobs) - len(head)
    mixed = [(_branches, *j) for j in jobs[len(head) :]] + [(_row, *_row_job(folds[k], r)) for k, r in tasks]
    done = list(tqdm(map_fn(_call, mixed), total=len(mixed), desc="rows", disable=not progress))
    folds, done = folds + done[:last], done[last:]
    more = tasks_of(range(len(head), len(jobs)))
    if more:
        done += list(map_fn(_row, [_row_job(folds[k], r) for k, r in more]))
    tasks, rows = tasks + more, [_rows(fold, order, fusions, config, stackers) for fold in folds]
    cpu = {"branches": round(sum(f["cpu_s"] for f in folds), 1)}
    scores: dict[tuple[int, str], np.ndarray] = {}
    for (k, r), (s, c) in zip(tasks, done, strict=True):
        cpu[r.key] = round(cpu.get(r.key, 0.0) + c, 1)
        if s is not None:
            scores[k, r.key] = s
    preds: dict[str, np.ndarray] = {}
    for prefix in ("single:", "combo:", "fusion:"):
        for k, (_, te) in enumerate(outer):
            for key in (r.key for r in rows[k]):
                if key.startswith(prefix) and (k, key) in scores:
                    preds.setdefault(key, np.zeros((n, L), np.float32))[te] = scores[k, key]
    kinds: dict[str, str] = {}
    for fold in folds:
        kinds.update(fold["kinds"])

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
        "stacker_options": {"default": dict(config.stacker), **stackers},
        "tables": tables,
        "per_tag_ap": {t: (None if np.isnan(a) else round(float(a), 4)) for t, a in zip(vocab.tags, ap, strict=True)},
        "seconds": round(time.time() - t0, 1),
        "cpu_s": cpu,
        "predictions": preds,
        "truth": Y,
    }
