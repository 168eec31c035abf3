"""Decisions on real multi-label data: calibration, per-tag thresholds for a goal, the label audit.

Each set is split 80/20 (seeded); adtag's default stacker is trained on the 80%, the decision
layer is fitted on the whole system's out-of-fold scores of those training items, and every
figure below is measured on the 20% held out.

    python benchmarks/bench_decide.py [--sets emotions,yeast,...] [--audit yeast] [--cache DIR]

``--cache DIR`` keeps each set's out-of-fold and held-out score arrays (npz), so a re-run only
re-fits the decision layer. ``--audit SET`` corrupts SET's training labels (drops 10% of the
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adtag.audit import error_probability, rank_suspects  # noqa: E402
from adtag.data.manifest import Item  # noqa: E402
from adtag.data.vocab import Vocabulary  # noqa: E402
from adtag.decisions.decider import Decider  # noqa: E402
from adtag.decisions.fit import tagger_oof_scores  # noqa: E402
from adtag.metrics import decision_scores, expected_calibration_error, gap_at_k  # noqa: E402
from adtag.models.tagger import Tagger, TrainConfig  # noqa: E402
from benchmarks.datasets import LOADERS  # noqa: E402

DEFAULT_SETS = ["emotions", "yeast", "scene", "birds", "tnews"]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(0.8 * n)
    return perm[:k], perm[k:]


def train_scores(train: list[Item], test: list[Item], vocab: Vocabulary, seed: int = 0, oof: bool = True):
    """Out-of-fold scores of the whole system on ``train`` (if ``oof``) and its scores on ``test``."""
    quiet = lambda *a, **k: None  # noqa: E731
    tagger = Tagger(TrainConfig(folds=5, seed=seed)).fit(train, vocab, progress=False, log=quiet)
    Ytr = vocab.encode([it.tags for it in train])
    oof = tagger_oof_scores(tagger, Ytr) if oof else None
    return oof, tagger.predict_proba(test), tagger, Ytr


def ece_floor(cal: np.ndarray, draws: int = 100) -> float:
    """ECE a perfectly calibrated score would show on this many held-out pairs (labels drawn from it)."""
    rng = np.random.default_rng(0)
    return float(np.mean([expected_calibration_error(cal, rng.random(cal.shape) < cal) for _ in range(draws)]))


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(scores.shape, bool)
    out[np.arange(len(scores))[:, None], np.argsort(-scores, 1)[:, :k]] = True
    return out


def quality(name: str, cache: Path | None) -> dict:
    items = LOADERS[name]()
    vocab = Vocabulary.from_items([it.tags for it in items])
    tr, te = split(len(items))
    train, test = [items[i] for i in tr], [items[i] for i in te]
    Ytr, Yte = vocab.encode([it.tags for it in train]), vocab.encode([it.tags for it in test])
    f = cache / f"{name}.npz" if cache else None
    t0, c0 = time.time(), cpu_seconds()
    if f is not None and f.is_file():
        z = np.load(f)
        oof, raw = z["oof"], z["raw"]
        trained = "cached"
    else:
        oof, raw, _, _ = train_scores(train, test, vocab)
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez(f, oof=oof, raw=raw)
        trained = "trained"
    t_train, c_train = time.time() - t0, cpu_seconds() - c0
    t0 = time.time()
    d = Decider.fit(oof, Ytr, vocab.tags, "f1")
    cal, dec, review = d.decide(raw)
    t_fit = time.time() - t0
    k = max(1, int(round(Ytr.sum(1).mean())))
    rows = {
        "decide f1": decision_scores(dec, Yte),
        "global 0.5": decision_scores(raw >= 0.5, Yte),
        f"top-{k}": decision_scores(topk(raw, k), Yte),
    }
    goals = {}
    for g in ("precision=0.9", "recall=0.8"):
        dg = d.with_goal(g)
        r = decision_scores(dg.decide(raw)[1], Yte)
        goals[g] = {
            "held_out": r,
            "oof": dg.metrics["oof_decisions"],
            "tags_never_decided": dg.metrics["tags_never_decided"],
        }
    return {
        "set": name,
        "items": len(items),
        "tags": len(vocab),
        "train": len(train),
        "held_out": len(test),
        "mean_tags_train": float(Ytr.sum(1).mean()),
        "ece_before": expected_calibration_error(raw, Yte),
        "ece_after": expected_calibration_error(cal, Yte),
        "ece_noise_floor": ece_floor(cal),
        "gap_before": gap_at_k(raw, Yte),
        "gap_after": gap_at_k(cal, Yte),
        "review_per_item": float(review.sum(1).mean()),
        "decisions": rows,
        "goals": goals,
        "tags_with_own_threshold": d.metrics["tags_with_own_threshold"],
        "scores": trained,
        "train_wall_s": round(t_train, 1),
        "train_cpu_s": round(c_train, 1),
        "decision_fit_s": round(t_fit, 2),
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
        oof, raw, _, _ = train_scores(relabel(Ynoisy), test, vocab)
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez(f, oof=oof, raw=raw)
    d = Decider.fit(oof, Ynoisy, vocab.tags, "f1")
    suspects = rank_suspects(d.calibrate(oof), Ynoisy, [it.id for it in train], vocab.tags, top=top)
    cal = d.calibrate(oof)
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
    _, raw_fixed, _, _ = train_scores(relabel(Yfixed), test, vocab, oof=False)
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


def markdown(quality_rows: list[dict], audit_rows: list[dict]) -> str:
    out = [
        "| set | items | tags | ECE before -> after | GAP before -> after | macro F1: decide f1 / 0.5 / top-k | "
        "micro F1: decide f1 / 0.5 / top-k | precision=0.9: P, R held-out | recall=0.8: R, P held-out |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in quality_rows:
        k = [key for key in r["decisions"] if key.startswith("top-")][0]
        dd = r["decisions"]
        p9 = r["goals"]["precision=0.9"]["held_out"]
        r8 = r["goals"]["recall=0.8"]["held_out"]
        out.append(
            f"| {r['set']} | {r['items']} | {r['tags']} | {r['ece_before']:.4f} -> {r['ece_after']:.4f} "
            f"({r['ece_noise_floor']:.4f}) | "
            f"{r['gap_before']:.4f} -> {r['gap_after']:.4f} | **{dd['decide f1']['macro_f1']:.4f}** / "
            f"{dd['global 0.5']['macro_f1']:.4f} / {dd[k]['macro_f1']:.4f} ({k}) | {dd['decide f1']['micro_f1']:.4f} / "
            f"{dd['global 0.5']['micro_f1']:.4f} / {dd[k]['micro_f1']:.4f} | {p9['micro_precision']:.3f}, "
            f"{p9['micro_recall']:.3f} | {r8['micro_recall']:.3f}, {r8['micro_precision']:.3f} |"
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
    ap.add_argument("--cache", type=Path, default=None, help="folder for score arrays (reused when present)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    q = []
    for name in [s for s in args.sets.split(",") if s]:
        q.append(quality(name, args.cache))
        print(json.dumps({k: v for k, v in q[-1].items() if k not in ("decisions", "goals")}), flush=True)
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
    stem = "decide" if q else "decide_audit"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "quality": q, "audit": a}, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(q, a))
    print(markdown(q, a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
