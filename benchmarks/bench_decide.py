"""Decisions on real multi-label data: calibration, per-tag thresholds for a goal, the label audit.

Quality figures are pooled over an outer K-fold (default 5): for each fold adtag's default
stacker is trained on the other folds, the decision layer is fitted on the whole system's
out-of-fold scores of those training items, and the fold's items are scored; every item is held
out exactly once. The decision layer before this pass (per-tag Platt + isotonic always, counted
precision/recall cuts) is refitted on the same arrays as the reference.

    python benchmarks/bench_decide.py --cache DIR [--sets emotions,yeast,...] [--folds 5]
    python benchmarks/bench_decide.py --cache DIR --sets "" --taac WORKDIR
    python benchmarks/bench_decide.py --cache DIR --sets "" --audit yeast
    python benchmarks/bench_decide.py --cache DIR --sets "" --demo adtag-demo/features/manifest.jsonl

``--cache DIR`` keeps each fold's out-of-fold and held-out score arrays (npz), so a re-run only
re-fits the decision layer. ``--models DIR`` also keeps each outer fold's fitted system; with
``--rescore`` the held-out items are scored again by those systems with today's prediction code
(how two ways of averaging the fold models were compared on the same models, section 11c).
Decisions are made on the decision layer's own scores of the held-out items (the mean of the K
refits behind its out-of-fold scores, ``fit.scores_for_decisions``), where the run has them (a trained
system, or ``--refit-oof``); GAP and the ranked scores' ECE stay the final system's (BENCHMARKS 11g).
``--taac WORKDIR``: the real TAAC tags of 5,000 videos as a task (the
presentation and style tags are the input text, all 82 tags the labels), trained and evaluated
per taxonomy group with the CLI. ``--audit SET`` corrupts SET's training labels (drops 10% of the
true tags, adds 5% wrong ones), trains, audits, then fixes the audit's top N and retrains.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adtag.audit import audit_scores, error_probability, rank_suspects  # noqa: E402
from adtag.data.manifest import Item  # noqa: E402
from adtag.data.vocab import Vocabulary  # noqa: E402
from adtag.decisions.decider import Decider  # noqa: E402
from adtag.decisions.fit import scores_for_decisions, tagger_oof_scores  # noqa: E402
from adtag.decisions.oof import fold_ids  # noqa: E402
from adtag.decisions.thresholds import fit_thresholds, parse_goal  # noqa: E402
from adtag.metrics import decision_scores, expected_calibration_error, gap_at_k  # noqa: E402
from adtag.models.tagger import Tagger, TrainConfig  # noqa: E402
from benchmarks.datasets import LOADERS  # noqa: E402

DEFAULT_SETS = ["emotions", "yeast", "scene", "birds", "tnews"]
TRAIN_SEED = 0  # the systems' own seed (inner folds, models); the outer split keeps seed 0


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(0.8 * n)
    return perm[:k], perm[k:]


def outer_split(n: int, fold: int, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``fold`` of an outer K-fold over the same permutation as ``split`` (the last fold is
    ``split``'s 20%): every item is held out exactly once across the folds."""
    perm = np.random.default_rng(seed).permutation(n)
    lo, hi = fold * n // folds, (fold + 1) * n // folds
    return np.concatenate([perm[:lo], perm[hi:]]), perm[lo:hi]


def kept_oof(kept: Path, tagger: Tagger, train: list[Item], Ytr: np.ndarray, keep: list | None = None) -> np.ndarray:
    """The whole-system out-of-fold scores fitted again, with today's decision code, on a kept system's
    out-of-fold meta-features (its ``meta_features.npz``; the extras are featurized again); ``keep``
    receives the refits."""
    from adtag.models.meta_features import MetaFeatures

    with np.load(kept / "meta_features.npz") as z:
        P, present, branches = z["P"], z["present"], [str(b) for b in z["branches"]]
    extras = tagger._branch_inputs(tagger.features(train))[3]
    tagger.meta_features_ = MetaFeatures(P, present, branches, extras)
    return tagger_oof_scores(tagger, Ytr, keep=keep)


def scored(tagger: Tagger, refits: list, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """(ranked, decide on): the final system's scores of ``items`` and the mean of the decision layer's refits'."""
    from types import SimpleNamespace

    tagger.decider_ = SimpleNamespace(refits=refits)
    return scores_for_decisions(tagger, items)


def outer_arrays(
    name: str,
    fold: int,
    cache: Path,
    folds: int = 5,
    models: Path | None = None,
    rescore: bool = False,
    refit_oof: bool = False,
) -> dict:
    """Cached (or computed) out-of-fold scores on fold ``fold``'s training items and raw scores on its
    held-out items, with both label matrices and the held-out positions. ``models``: a folder where
    each outer fold's fitted system is kept; with ``rescore``, the held-out items are scored again by
    the kept system with today's prediction code (the out-of-fold scores do not depend on it); with
    ``refit_oof``, the out-of-fold scores are fitted again from the kept system (``kept_oof``), and the
    held-out items are also scored by those refits (``decide_on``; else the cache's, else ``raw``)."""
    items = LOADERS[name]()
    vocab = Vocabulary.from_items([it.tags for it in items])
    tr, te = outer_split(len(items), fold, folds)
    train, test = [items[i] for i in tr], [items[i] for i in te]
    Ytr, Yte = vocab.encode([it.tags for it in train]), vocab.encode([it.tags for it in test])
    f = cache / (f"{name}.npz" if fold == folds - 1 else f"{name}_outer{fold}.npz")
    kept = models / f"{name}_outer{fold}" if models else None
    if f.is_file():
        z = np.load(f)
        oof, raw, wall, cpu = z["oof"], z["raw"], None, None
        decide_on = z["decide_on"] if "decide_on" in z.files else raw
        system = Tagger.load(kept) if (rescore or refit_oof) and kept is not None and kept.is_dir() else None
        if rescore and system is not None:
            raw = decide_on = system.predict_proba(test)
        if refit_oof and system is not None:
            refits: list = []
            oof = kept_oof(kept, system, train, Ytr, keep=refits)
            ranked, decide_on = scored(system, refits, test)
            raw = ranked if rescore else raw
    else:
        t0, c0 = time.time(), cpu_seconds()
        oof, raw, tagger, _, decide_on = train_scores(train, test, vocab, seed=TRAIN_SEED)
        wall, cpu = time.time() - t0, cpu_seconds() - c0
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, oof=oof, raw=raw, decide_on=decide_on)
        if kept is not None:
            tagger.save(kept)
    return {
        "oof": oof,
        "raw": raw,
        "decide_on": decide_on,
        "Ytr": Ytr,
        "Yte": Yte,
        "te": te,
        "tags": vocab.tags,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def train_scores(train: list[Item], test: list[Item], vocab: Vocabulary, seed: int = 0, oof: bool = True):
    """Out-of-fold scores of the whole system on ``train`` (if ``oof``), its scores on ``test``, the tagger,
    the training labels, and the decision layer's scores of ``test`` (its refits' mean; without ``oof``
    the final system's)."""
    quiet = lambda *a, **k: None  # noqa: E731
    tagger = Tagger(TrainConfig(folds=5, seed=seed)).fit(train, vocab, progress=False, log=quiet)
    Ytr = vocab.encode([it.tags for it in train])
    refits: list = []
    oof = tagger_oof_scores(tagger, Ytr, keep=refits) if oof else None
    raw, decide_on = scored(tagger, refits, test)
    tagger.decider_ = None
    return oof, raw, tagger, Ytr, decide_on


def ece_floor(cal: np.ndarray, draws: int = 100) -> float:
    """ECE a perfectly calibrated score would show on this many held-out pairs (labels drawn from it)."""
    rng = np.random.default_rng(0)
    return float(np.mean([expected_calibration_error(cal, rng.random(cal.shape) < cal) for _ in range(draws)]))


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(scores.shape, bool)
    out[np.arange(len(scores))[:, None], np.argsort(-scores, 1)[:, :k]] = True
    return out


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if not n:
        return (0.0, 1.0)
    p = hits / n
    c, m = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((c - m) / (1 + z * z / n), (c + m) / (1 + z * z / n))


def goal_row(decided: np.ndarray, Y: np.ndarray, cal: np.ndarray | None = None) -> dict:
    """Decision scores of a goal's decisions, the decided pairs and a 95% Wilson interval of their precision;
    with ``cal`` (the calibrated scores), the precision those scores predict for the decided pairs (their
    mean): what the cut rule aims at, so that a miss splits into the rule's aim and the new items' shift."""
    r = decision_scores(decided, Y)
    tp, n = int((decided & (Y > 0)).sum()), int(decided.sum())
    lo, hi = wilson_interval(tp, n)
    row = {**r, "decided_pairs": n, "precision_ci95": [round(lo, 4), round(hi, 4)]}
    if cal is not None:
        row["predicted_precision"] = round(float(cal[decided].mean()), 4) if n else None
    return row


# The decision layer before issue 13's second pass, refitted in the same run as the reference:
# per-tag Platt + pooled isotonic always, and precision/recall cuts on the counted rates alone.
BEFORE = {"calibration": "tag-platt+isotonic", "z": 0.0, "m": 0.0}


def fit_layer(oof: np.ndarray, Ytr: np.ndarray, tags: list[str], before: bool) -> Decider:
    return Decider.fit(oof, Ytr, tags, "f1", calibration=BEFORE["calibration"] if before else "auto")


def goal_decisions(d: Decider, goal: str, raw: np.ndarray, before: bool) -> np.ndarray:
    if not before:
        return d.with_goal(goal).decide(raw)[1]
    g = parse_goal(goal)
    th = fit_thresholds(d.calibrate(d.oof_scores), d.oof_truth, g, d.min_positives, z=BEFORE["z"], m=BEFORE["m"])
    return replace(d, thresholds=th).decide(raw)[1]


def cross_fitted_ece(oof: np.ndarray, Ytr: np.ndarray, tags: list[str], before: bool) -> float:
    """The calibration step alone, on the out-of-fold scores of the training items: fitted on 4/5 of
    them, measured on the other fifth, pooled (no shift between out-of-fold and final scores)."""
    fold = fold_ids(len(oof), 5, 99)
    cal = np.zeros_like(oof, dtype=np.float32)
    for k in range(5):
        d = fit_layer(oof[fold != k], Ytr[fold != k], tags, before)
        cal[fold == k] = d.calibrate(oof[fold == k])
    return expected_calibration_error(cal, Ytr)


def cached_folds(name: str, cache: Path, folds: int) -> list[int]:
    return [
        k for k in range(folds) if (cache / (f"{name}.npz" if k == folds - 1 else f"{name}_outer{k}.npz")).is_file()
    ]


def quality(
    name: str,
    cache: Path,
    folds: int = 5,
    cached_only: bool = False,
    models: Path | None = None,
    rescore: bool = False,
    refit_oof: bool = False,
) -> dict:
    """Every figure pooled over an outer K-fold: each item is held out once, scored by a system
    (and a decision layer) fitted on the other folds. ``cached_only``: the folds whose arrays are
    in the cache only (reported as ``outer_folds_used``)."""
    t0, c0 = time.time(), cpu_seconds()
    use = cached_folds(name, cache, folds) if cached_only else list(range(folds))
    parts = [outer_arrays(name, k, cache, folds, models, rescore, refit_oof) for k in use]
    trained = [(p["wall_s"], p["cpu_s"]) for p in parts if p["wall_s"] is not None]
    tags = parts[0]["tags"]
    t_fit = time.time()
    pooled: dict[str, list] = {}

    def add(key: str, value: np.ndarray) -> None:
        pooled.setdefault(key, []).append(value)

    chosen, ece_folds = [], []
    for p in parts:
        oof, raw, Ytr, Yte = p["oof"], p["raw"], p["Ytr"], p["Yte"]
        add("raw", raw)
        add("Y", Yte)
        k = max(1, int(round(Ytr.sum(1).mean())))
        add("global 0.5", raw >= 0.5)
        add("top-k", topk(raw, k))
        for before in (True, False):
            tag = "before" if before else "after"
            d = fit_layer(oof, Ytr, tags, before)
            on = raw if before else p["decide_on"]  # the reference layer decides on the final scores
            cal, dec, _ = d.decide(on)
            add(f"cal {tag}", d.calibrate(raw))  # the ranked scores, calibrated
            add(f"cal decided-on {tag}", cal)
            add(f"f1 {tag}", dec)
            for goal in ("precision=0.9", "recall=0.8"):
                add(f"{goal} {tag}", goal_decisions(d, goal, on, before))
            if not before:
                chosen.append(d.calibrator.method_)
                ece_folds.append(round(expected_calibration_error(cal, Yte), 4))
    P = {key: np.concatenate(v) for key, v in pooled.items()}
    Y = P["Y"]
    last = parts[-1]
    out = {
        "set": name,
        "items": int(len(Y)),
        "tags": len(tags),
        "outer_folds": folds,
        "outer_folds_used": len(use),
        "mean_tags": float(Y.sum(1).mean()),
        "ece_raw": expected_calibration_error(P["raw"], Y),
        "ece_before": expected_calibration_error(P["cal before"], Y),
        "ece_after": expected_calibration_error(P["cal after"], Y),
        "ece_noise_floor": ece_floor(P["cal after"]),
        "ece_decided_on_after": expected_calibration_error(P["cal decided-on after"], Y),
        "decided_on": "refits' mean" if any(p["decide_on"] is not p["raw"] for p in parts) else "final scores",
        "ece_after_per_fold": ece_folds,
        "ece_single_fold_noise_floor": ece_floor(parts[-1]["raw"]),
        "ece_cross_fitted_before": cross_fitted_ece(last["oof"], last["Ytr"], tags, True),
        "ece_cross_fitted_after": cross_fitted_ece(last["oof"], last["Ytr"], tags, False),
        "calibration_chosen": chosen,
        "gap_raw": gap_at_k(P["raw"], Y),
        "gap_before": gap_at_k(P["cal before"], Y),
        "gap_after": gap_at_k(P["cal after"], Y),
        "decisions": {
            "decide f1 (before)": decision_scores(P["f1 before"], Y),
            "decide f1": decision_scores(P["f1 after"], Y),
            "global 0.5": decision_scores(P["global 0.5"], Y),
            "top-k": decision_scores(P["top-k"], Y),
        },
        "goals": {
            f"{goal} ({tag})": goal_row(P[f"{goal} {tag}"], Y, P[f"cal decided-on {tag}"])
            for goal in ("precision=0.9", "recall=0.8")
            for tag in ("before", "after")
        },
        "scores": "trained" if trained else "rescored" if rescore and models else "cached",
        "oof": "refitted from the kept systems" if refit_oof and models else "as trained or cached",
        "train_wall_s": round(sum(t for t, _ in trained), 1),
        "train_cpu_s": round(sum(c for _, c in trained), 1),
        "decision_fit_s": round(time.time() - t_fit, 2),
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(cpu_seconds() - c0, 1),
    }
    return out


def seeds_pooled(
    name: str,
    runs: list[tuple[Path, Path | None]],
    folds: int = 5,
    rescore: bool = False,
    refit_oof: bool = False,
    goal: str = "precision=0.9",
    draws: int = 2000,
) -> dict:
    """A goal's held-out precision over several trained systems of one set (``runs``: each a cache and
    its kept systems, e.g. one per ``--train-seed``), per run and their mean. The runs share the outer
    folds' items, so their errors are not independent: the mean's 95% interval comes from resampling
    the held-out items (all runs together, the fitted thresholds fixed), not from the runs' spread."""
    decided, cal, Y, rows = [], [], None, []
    for cache, models in runs:
        missing = sorted(set(range(folds)) - set(cached_folds(name, cache, folds)))
        if missing:
            print(f"--seed-runs: {cache} lacks the arrays of outer folds {missing} of {name}", file=sys.stderr)
            raise SystemExit(2)
        parts = [outer_arrays(name, k, cache, folds, models, rescore, refit_oof) for k in range(folds)]
        n, L = sum(len(p["te"]) for p in parts), len(parts[0]["tags"])
        d, y, c = np.zeros((n, L), bool), np.zeros((n, L), bool), np.zeros((n, L))
        for p in parts:
            layer = fit_layer(p["oof"], p["Ytr"], p["tags"], False).with_goal(goal)
            c[p["te"]], d[p["te"]], _ = layer.decide(p["decide_on"])
            y[p["te"]] = p["Yte"] > 0
        if Y is not None and not np.array_equal(Y, y):
            print(f"--seed-runs: {cache} does not hold the same items as the runs before it", file=sys.stderr)
            raise SystemExit(2)
        Y = y
        decided.append(d)
        cal.append(c)
        rows.append({"cache": str(cache), **goal_row(d, y, c)})
    D = np.array(decided)

    def precision(idx: np.ndarray) -> np.ndarray:
        y = Y[idx]
        return np.array([(D[r, idx] & y).sum() / max(D[r, idx].sum(), 1) for r in range(len(D))])

    rng = np.random.default_rng(0)
    boot = np.array([precision(rng.integers(0, len(Y), len(Y))).mean() for _ in range(draws)])
    p = precision(np.arange(len(Y)))
    return {
        "set": name,
        "goal": goal,
        "items": int(len(Y)),
        "runs": rows,
        "mean_precision": round(float(p.mean()), 4),
        "runs_sd": round(float(p.std(ddof=1)), 4) if len(p) > 1 else None,
        "mean_ci95_item_bootstrap": [round(float(np.quantile(boot, q)), 4) for q in (0.025, 0.975)],
        "mean_predicted_precision": round(float(np.mean([r["predicted_precision"] for r in rows])), 4),
        "distinct_decided_pairs": int(D.any(0).sum()),
    }


def corrupt(Y: np.ndarray, drop: float, add: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Drop ``drop`` of the true tags (never an item's last) and add ``add`` x as many wrong ones."""
    rng = np.random.default_rng(seed)
    Yc = Y.copy().astype(bool)
    pos = np.argwhere(Yc)
    n_drop = int(round(drop * len(pos)))
    dropped = 0
    for i, j in pos[rng.permutation(len(pos))]:
        if dropped >= n_drop:
            break
        if Yc[i].sum() > 1:
            Yc[i, j] = False
            dropped += 1
    neg = np.argwhere(~Y.astype(bool))
    for i, j in neg[rng.choice(len(neg), int(round(add * len(pos))), replace=False)]:
        Yc[i, j] = True
    return Yc, Yc != Y.astype(bool)


def audit(name: str, top: int = 200, cache: Path | None = None) -> dict:
    items = LOADERS[name]()
    vocab = Vocabulary.from_items([it.tags for it in items])
    tr, te = split(len(items), seed=1)
    train, test = [items[i] for i in tr], [items[i] for i in te]
    Ytrue = vocab.encode([it.tags for it in train]) > 0
    Yte = vocab.encode([it.tags for it in test])
    Ynoisy, corrupted = corrupt(Ytrue, 0.10, 0.05)

    def relabel(Y: np.ndarray) -> list[Item]:
        return [
            Item(id=it.id, tags=[vocab.tags[j] for j in np.flatnonzero(Y[i])], features=it.features, text=it.text)
            for i, it in enumerate(train)
        ]

    t0, c0 = time.time(), cpu_seconds()
    f = cache / f"audit_{name}.npz" if cache else None
    if f is not None and f.is_file():
        z = np.load(f)
        oof, raw = z["oof"], z["raw"]
    else:
        oof, raw, _, _, _ = train_scores(relabel(Ynoisy), test, vocab)
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez(f, oof=oof, raw=raw)
    d = Decider.fit(oof, Ynoisy, vocab.tags, "f1")
    cal = audit_scores(d)
    suspects = rank_suspects(cal, Ynoisy, [it.id for it in train], vocab.tags, top=top)
    ranking = {}
    for label, susp in [("1-s / s", np.where(Ynoisy, 1 - cal, cal))] + [
        (f"posterior drop={dr} add={ad}", error_probability(cal, Ynoisy, dr, ad))
        for dr, ad in ((0.05, 0.01), (0.1, 0.02), (0.2, 0.05))
    ]:
        idx = np.argsort(-susp.ravel(), kind="stable")[:top]
        ranking[label] = float(corrupted.ravel()[idx].mean())
    pos = {it.id: i for i, it in enumerate(train)}
    col = vocab.index
    flagged = [(pos[s.item], col[s.tag]) for s in suspects]
    hits = [bool(corrupted[i, j]) for i, j in flagged]
    prec = {n: float(np.mean(hits[:n])) for n in (50, 100, 200) if n <= len(hits)}
    Yfixed = Ynoisy.copy()
    for i, j in flagged:
        Yfixed[i, j] = not Yfixed[i, j]
    Yfixed[Yfixed.sum(1) == 0] = Ynoisy[Yfixed.sum(1) == 0]  # never leave an item without tags
    _, raw_fixed, _, _, _ = train_scores(relabel(Yfixed), test, vocab, oof=False)
    return {
        "set": name,
        "train": len(train),
        "held_out": len(test),
        "true_tags": int(Ytrue.sum()),
        "dropped": int((corrupted & Ytrue).sum()),
        "added": int((corrupted & ~Ytrue).sum()),
        "audit_top": top,
        "precision_at": prec,
        "top_precision_by_ranking": ranking,
        "wrong_found": int(sum(h for h, (i, j) in zip(hits, flagged, strict=True) if Ynoisy[i, j])),
        "missing_found": int(sum(h for h, (i, j) in zip(hits, flagged, strict=True) if not Ynoisy[i, j])),
        "labels_fixed_correctly": int(sum(hits)),
        "gap_noisy": gap_at_k(raw, Yte),
        "gap_fixed": gap_at_k(raw_fixed, Yte),
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(cpu_seconds() - c0, 1),
    }


TAAC_INPUT = {"呈现": "presentation", "风格": "style"}  # dimensions given as input text (their tags)


def taac_manifests(root: Path, seed: int = 0) -> tuple[Path, Path, Path, dict]:
    """Real TAAC tags as a task: each video's presentation and style tags are its input text (two
    text modalities), all 82 tags are its labels; 80/20 split of the 5,000 videos (seeded)."""
    labels = datasets_shared() / "data" / "taac2021" / "labels"
    dim = {}
    for line in (labels / "label_dimension.csv").read_text(encoding="utf-8").splitlines():
        parts = line.split(",")
        if len(parts) >= 3:
            dim[parts[0]] = parts[2]
    rows = []
    for line in (labels / "tagging_info_train5k.txt").read_text(encoding="utf-8").splitlines():
        vid, _, tags = line.partition("\t")
        tags = [t for t in tags.split(",") if t]
        if not tags:
            continue
        text = {m: " ".join(t for t in tags if dim.get(t) == d) for d, m in TAAC_INPUT.items()}
        rows.append({"id": vid.removesuffix(".mp4"), "tags": tags, "text": {k: v for k, v in text.items() if v}})
    perm = np.random.default_rng(seed).permutation(len(rows))
    cut = int(0.8 * len(rows))
    root.mkdir(parents=True, exist_ok=True)
    train, test = root / "train.jsonl", root / "test.jsonl"
    for path, idx in ((train, perm[:cut]), (test, perm[cut:])):
        path.write_text("".join(json.dumps(rows[i], ensure_ascii=False) + "\n" for i in idx), encoding="utf-8")
    cover = {d: float(np.mean([any(dim.get(t) == d for t in r["tags"]) for r in rows])) for d in set(dim.values())}
    return train, test, labels / "label_dimension.csv", {"videos": len(rows), "train": cut, "group_coverage": cover}


def taac(root: Path) -> dict:
    """``adtag train --decide f1 --taxonomy``, ``predict --decide``, ``evaluate --taxonomy`` on the task above."""
    from adtag.cli import main as adtag

    train, test, tax, info = taac_manifests(root)
    model, pred = root / "model", root / "pred.json"
    t0, c0 = time.time(), cpu_seconds()
    argv = ["train", str(train), "--out", str(model), "--quiet", "--decide", "f1", "--taxonomy", str(tax)]
    assert adtag(argv + ["--per-group-min", "1,叙述=0"]) == 0
    t_train, c_train = time.time() - t0, cpu_seconds() - c0
    assert adtag(["predict", str(model), str(test), "--out", str(pred), "--decide"]) == 0
    out = root / "eval.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert adtag(["evaluate", str(pred), str(test), "--json", "--taxonomy", str(tax)]) == 0
    res = json.loads(buf.getvalue())
    out.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    return {
        **info,
        "input_groups": list(TAAC_INPUT),
        "gap": res.get("gap"),
        "decisions": res.get("decisions"),
        "per_group": res.get("per_group"),
        "train_wall_s": round(t_train, 1),
        "train_cpu_s": round(c_train, 1),
    }


def datasets_shared() -> Path:
    from benchmarks.datasets import shared_dir

    return shared_dir()


def markdown(quality_rows: list[dict], audit_rows: list[dict], taac_rows: list[dict] | None = None) -> str:
    out = []
    if quality_rows:
        out += [
            "| set | items (outer folds) | ECE raw / before / **after** (noise floor) | ECE cross-fitted before -> "
            "after | GAP raw / before / after | macro F1: decide f1 before / after / 0.5 / top-k | "
            "precision=0.9 before: P [95% CI] (aim), R | after: P [95% CI] (aim), R | "
            "recall=0.8 before: R, P | after: R, P |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in quality_rows:
        dd, g = r["decisions"], r["goals"]

        def pr(key: str, g: dict = g) -> str:
            x = g[key]
            lo, hi = x["precision_ci95"]
            aim = f" (aim {x['predicted_precision']:.3f})" if x.get("predicted_precision") is not None else ""
            return f"{x['micro_precision']:.3f} [{lo:.3f}, {hi:.3f}]{aim}, {x['micro_recall']:.3f}"

        def rp(key: str, g: dict = g) -> str:
            return f"{g[key]['micro_recall']:.3f}, {g[key]['micro_precision']:.3f}"

        out.append(
            f"| {r['set']} | {r['items']} ({r['outer_folds_used']} of {r['outer_folds']}) | "
            f"{r['ece_raw']:.4f} / {r['ece_before']:.4f} / "
            f"**{r['ece_after']:.4f}** ({r['ece_noise_floor']:.4f}) | {r['ece_cross_fitted_before']:.4f} -> "
            f"{r['ece_cross_fitted_after']:.4f} | {r['gap_raw']:.4f} / {r['gap_before']:.4f} / {r['gap_after']:.4f} | "
            f"{dd['decide f1 (before)']['macro_f1']:.4f} / {dd['decide f1']['macro_f1']:.4f} / "
            f"{dd['global 0.5']['macro_f1']:.4f} / {dd['top-k']['macro_f1']:.4f} | "
            f"{pr('precision=0.9 (before)')} | {pr('precision=0.9 (after)')} | "
            f"{rp('recall=0.8 (before)')} | {rp('recall=0.8 (after)')} |"
        )
    for t in taac_rows or []:
        out += [
            "",
            f"TAAC tags as a task ({t['videos']} videos, {t['train']} train): input = the tags of "
            f"{' + '.join(t['input_groups'])}; GAP@20 {t['gap']:.4f}; decided micro F1 "
            f"{t['decisions']['micro_f1']:.4f}, macro F1 {t['decisions']['macro_f1']:.4f}",
            "",
            "| group | tags | items with one | GAP@20 | hit@1 | micro F1 | macro F1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for grp, row in t["per_group"].items():
            given = " (given as input)" if grp in t["input_groups"] else ""
            out.append(
                f"| {grp}{given} | {row['n_tags']} | {row['n_items']} | {row['gap']:.4f} | {row['hit1']:.4f} | "
                f"{row.get('micro_f1', float('nan')):.4f} | {row.get('macro_f1', float('nan')):.4f} |"
            )
    for a in audit_rows:
        out.append("")
        out.append(
            f"Audit on {a['set']} ({a['train']} training items, {a['true_tags']} true tags; {a['dropped']} dropped, "
            f"{a['added']} wrong added): precision of the top-N among corrupted labels "
            + ", ".join(f"top-{n} {p:.3f}" for n, p in a["precision_at"].items())
            + f"; held-out GAP@20 {a['gap_noisy']:.4f} with the noisy labels, {a['gap_fixed']:.4f} after fixing the "
            f"top {a['audit_top']} ({a['wall_s']} s wall, {a['cpu_s']} CPU-s)."
        )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(DEFAULT_SETS))
    ap.add_argument("--audit", default="", help="comma-separated sets for the corrupted-label audit")
    ap.add_argument("--cache", type=Path, required=True, help="folder for score arrays (reused when present)")
    ap.add_argument("--folds", type=int, default=5, help="outer folds of the quality figures (default: 5)")
    ap.add_argument("--cached-only", action="store_true", help="pool only the outer folds already in the cache")
    ap.add_argument("--models", type=Path, default=None, help="folder where each outer fold's fitted system is kept")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score the held-out items again with the systems kept in --models (today's prediction code)",
    )
    ap.add_argument(
        "--refit-oof",
        action="store_true",
        help="fit the whole-system out-of-fold scores again from the systems kept in --models (today's decision code)",
    )
    ap.add_argument("--taac", type=Path, default=None, help="work folder: run the TAAC real-tags task there")
    ap.add_argument(
        "--demo",
        type=Path,
        default=None,
        help="the demo corpus's extracted features/manifest.jsonl (from 'adtag demo'): adds the set 'demo'",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--train-seed", type=int, default=0, help="seed of the trained systems (not of the outer split)")
    ap.add_argument(
        "--seed-runs",
        default="",
        help="CACHE[:MODELS],... trained systems of each set in --sets (e.g. one per --train-seed, folds cached): "
        "precision=0.9 per run, their mean and its item-bootstrap interval, instead of the quality figures",
    )
    args = ap.parse_args()
    global TRAIN_SEED
    TRAIN_SEED = args.train_seed
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    sets = [s for s in args.sets.split(",") if s]
    if args.demo:
        from adtag.data.manifest import load_manifest

        LOADERS["demo"] = lambda: load_manifest(args.demo)
        sets.append("demo")
    if args.seed_runs:
        runs = [(Path(c), Path(m) if m else None) for c, _, m in (r.partition(":") for r in args.seed_runs.split(","))]
        pooled = [seeds_pooled(name, runs, args.folds, args.rescore, args.refit_oof) for name in sets]
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        meta |= {"load_before": load_before, "load_after": os.getloadavg()}
        text = json.dumps({"meta": meta, "seeds": pooled}, indent=2) + "\n"
        (args.out / "decide_seeds.json").write_text(text, encoding="utf-8")
        print(text)
        return 0
    q = []
    for name in sets:
        q.append(quality(name, args.cache, args.folds, args.cached_only, args.models, args.rescore, args.refit_oof))
        print(json.dumps({k: v for k, v in q[-1].items() if k not in ("decisions", "goals")}), flush=True)
    t = [taac(args.taac)] if args.taac else []
    if t:
        print(json.dumps(t[-1], ensure_ascii=False), flush=True)
    a = []
    for name in [s for s in args.audit.split(",") if s]:
        a.append(audit(name, cache=args.cache))
        print(json.dumps(a[-1]), flush=True)
    meta = {
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "decide" if q else "decide_taac" if t else "decide_audit"
    body = {"meta": meta, "quality": q, "taac": t, "audit": a}
    (args.out / f"{stem}.json").write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / f"{stem}.md").write_text(markdown(q, a, t), encoding="utf-8")
    print(markdown(q, a, t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
