"""Bring-your-own-model scores: stacking real models' per-tag scores (issue 10).

For each real data set: train 3-5 genuinely different models (other views, other model
families) on one part of the items, score a disjoint part, then stack the scored part with an
outer 5-fold split, once on ~500 scored items and once on all of them (several thousand where the
set has them). Side by side, same folds: best single model, plain averaging, scikit-learn
stacking, the paper's stacker and adtag's default stacker.

    python benchmarks/bench_scores.py [--sets yeast,scene,...] [--out benchmarks/results]

Level-1 scores are cached under ``$TMPDIR/adtag_bench_scores`` (they depend only on the data).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adtag import runtime  # noqa: E402
from adtag.metrics import gap_at_k  # noqa: E402
from adtag.models.fusions import mean_fusion  # noqa: E402
from adtag.models.meta_features import MetaFeatures  # noqa: E402
from adtag.models.stacker import Stacker  # noqa: E402
from benchmarks.datasets import LOADERS, shared_dir  # noqa: E402

DEFAULT_SETS = ["emotions", "birds", "yeast", "scene", "tnews", "thucnews", "nlpcc"]
CACHE = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "adtag_bench_scores"


# ---------------------------------------------------------------- data: (views or texts, Y)


def _multiview(name: str):
    items = LOADERS[name]()
    tags = sorted({t for it in items for t in it.tags})
    Y = np.array([[t in it.tags for t in tags] for it in items], dtype=np.float32)
    views = {k: np.stack([it.features[k] for it in items]) for k in items[0].features}
    return "vectors", views, Y


def _text_rows(rows: list[tuple[str, str]], extra: list[str] | None = None):
    labels = sorted({lab for lab, _ in rows})
    idx = {lab: j for j, lab in enumerate(labels)}
    Y = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, (lab, _) in enumerate(rows):
        Y[i, idx[lab]] = 1
    views = {"text": [t for _, t in rows]}
    if extra is not None:
        views["keywords"] = extra
    return "text", views, Y


def _tnews():
    rows, kw = [], []
    for line in (shared_dir() / "data/zh_text/tnews/dev.json").read_text(encoding="utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            rows.append((o["label_desc"], o["sentence"]))
            kw.append(o.get("keywords", "").replace(",", " "))
    return _text_rows(rows, kw)


def _thucnews():
    rows = []
    for part in ("dev", "test"):
        for line in (shared_dir() / f"data/zh_text/thucnews/{part}.txt").read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                text, lab = line.rsplit("\t", 1)
                rows.append((lab, text))
    return _text_rows(rows)


def _nlpcc():
    rows = []
    for line in (shared_dir() / "data/zh_text/nlpcc2017/test.word").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            lab, text = line.split("\t", 1)
            rows.append((lab, text))
    return _text_rows(rows)


DATA = {
    "emotions": lambda: _multiview("emotions"),
    "birds": lambda: _multiview("birds"),
    "yeast": lambda: _multiview("yeast"),
    "scene": lambda: _multiview("scene"),
    "tnews": _tnews,
    "thucnews": _thucnews,
    "nlpcc": _nlpcc,
}
# (items that train the level-1 models, items they score); the rest of a set is not used.
SPLIT = {
    "emotions": (293, 300),
    "birds": (170, 181),
    "yeast": (1200, 1217),
    "scene": (1200, 1207),
    "tnews": (1928, 3000),
    "thucnews": (5000, 5000),
    "nlpcc": (5000, 5000),
}


# ---------------------------------------------------------------- level 1: genuinely different models


def _proba(model, X) -> np.ndarray:
    """(n, L) per-tag scores from a fitted multi-output / multi-class scikit-learn model."""
    p = model.predict_proba(X)
    if isinstance(p, list):  # multi-output trees: one (n, 2) block per tag
        return np.stack([q[:, 1] if q.shape[1] > 1 else np.zeros(len(q)) for q in p], axis=1)
    return p


def _fit_multilabel(make, X, Y):
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(make()).fit(X, Y)


def _vector_models(views: dict[str, np.ndarray], Y: np.ndarray, tr: np.ndarray, te: np.ndarray):
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    out = {}
    for name, X in views.items():  # one linear model per view
        sc = StandardScaler().fit(X[tr])
        m = _fit_multilabel(lambda: LogisticRegression(C=0.1, max_iter=500), sc.transform(X[tr]), Y[tr])
        out[f"lr_{name}"] = m.predict_proba(sc.transform(X[te]))
    Xall = np.hstack(list(views.values()))
    sc = StandardScaler().fit(Xall[tr])
    Xtr, Xte = sc.transform(Xall[tr]), sc.transform(Xall[te])
    knn = KNeighborsClassifier(n_neighbors=15, weights="distance").fit(Xtr, Y[tr])
    out["knn_all"] = _proba(knn, Xte)
    et = ExtraTreesClassifier(n_estimators=200, min_samples_leaf=2, random_state=0, n_jobs=1).fit(Xtr, Y[tr])
    out["trees_all"] = _proba(et, Xte)
    gb = _fit_multilabel(lambda: HistGradientBoostingClassifier(max_iter=60, learning_rate=0.1), Xtr, Y[tr])
    out["gbm_all"] = gb.predict_proba(Xte)
    return out


def _text_models(views: dict[str, list[str]], Y: np.ndarray, tr: np.ndarray, te: np.ndarray):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC

    y = Y.argmax(1)
    text = np.array(views["text"], dtype=object)
    out = {}
    tf = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit(text[tr])
    Xtr, Xte = tf.transform(text[tr]), tf.transform(text[te])
    out["lr_char"] = LogisticRegression(C=4, max_iter=300).fit(Xtr, y[tr]).predict_proba(Xte)
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine", weights="distance").fit(Xtr, y[tr])
    out["knn_char"] = knn.predict_proba(Xte)
    segmented = np.mean([t.count(" ") for t in text]) > 2  # NLPCC comes word-segmented, the others not
    cv = CountVectorizer(analyzer="word", token_pattern=r"(?u)\S+") if segmented else CountVectorizer(analyzer="char")
    cv.fit(text[tr])
    out["nb_counts"] = MultinomialNB(alpha=0.3).fit(cv.transform(text[tr]), y[tr]).predict_proba(cv.transform(text[te]))
    tf3 = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True, min_df=2).fit(text[tr])
    svc = LinearSVC(C=0.5).fit(tf3.transform(text[tr]), y[tr])
    d = svc.decision_function(tf3.transform(text[te]))
    out["svm_char23"] = 1 / (1 + np.exp(-2 * d))  # the margin squashed, as a user would
    if "keywords" in views:
        kw = np.array(views["keywords"], dtype=object)
        tk = TfidfVectorizer(token_pattern=r"(?u)\S+", sublinear_tf=True).fit(kw[tr])
        lr = LogisticRegression(C=4, max_iter=300).fit(tk.transform(kw[tr]), y[tr])
        out["lr_keywords"] = lr.predict_proba(tk.transform(kw[te]))
    return out


def level1(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores (n, M, L) of M models on the scored part, its truth (n, L) and the model names."""
    f = CACHE / f"{name}.npz"
    if f.is_file():
        with np.load(f, allow_pickle=False) as z:
            return z["S"], z["Y"], [str(x) for x in z["names"]]
    kind, views, Y = DATA[name]()
    n_tr, n_te = SPLIT[name]
    perm = np.random.default_rng(seed).permutation(len(Y))
    tr, te = perm[:n_tr], perm[n_tr : n_tr + n_te]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = (_vector_models if kind == "vectors" else _text_models)(views, Y, tr, te)
    names = list(out)
    S = np.stack([np.clip(out[k], 0, 1) for k in names], axis=1).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(f, S=S, Y=Y[te], names=np.array(names))
    return S, Y[te], names


# ---------------------------------------------------------------- level 2 under outer folds


def sklearn_stacking(Str: np.ndarray, Ytr: np.ndarray, Ste: np.ndarray) -> np.ndarray:
    """What StackingClassifier's final estimator does: a logistic regression per tag on all scores."""
    from sklearn.linear_model import LogisticRegression

    Xtr, Xte = Str.reshape(len(Str), -1), Ste.reshape(len(Ste), -1)
    out = np.zeros((len(Ste), Ytr.shape[1]), dtype=np.float32)
    for j in range(Ytr.shape[1]):
        if Ytr[:, j].min() == Ytr[:, j].max():
            out[:, j] = Ytr[0, j]
            continue
        out[:, j] = LogisticRegression(C=1.0, max_iter=500).fit(Xtr, Ytr[:, j]).predict_proba(Xte)[:, 1]
    return out


def stack_compare(S: np.ndarray, Y: np.ndarray, n: int, outer: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(Y), n, replace=False)) if n < len(Y) else np.arange(len(Y))
    S, Y = S[keep], Y[keep]
    present = np.ones(S.shape[:2], dtype=bool)
    extra = np.zeros((len(Y), 0), dtype=np.float32)
    folds = np.random.default_rng(seed + 1).permutation(len(Y)) % outer
    pred = {k: np.zeros_like(Y) for k in ("mean", "sklearn-stacking", "paper", "default")}
    secs = dict.fromkeys(pred, 0.0)
    chosen = []
    for k in range(outer):
        tr, te = folds != k, folds == k
        t0 = time.process_time()
        pred["mean"][te] = mean_fusion(S[te], present[te])
        secs["mean"] += time.process_time() - t0
        t0 = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred["sklearn-stacking"][te] = sklearn_stacking(S[tr], Y[tr], S[te])
        secs["sklearn-stacking"] += time.process_time() - t0
        names = [str(b) for b in range(S.shape[1])]
        mf_tr = MetaFeatures(S[tr], present[tr], names, extra[tr])
        mf_te = MetaFeatures(S[te], present[te], names, extra[te])
        for key, kind in (("paper", "paper"), ("default", "stack")):
            t0 = time.process_time()
            st = Stacker(kind=kind, seed=seed).fit(mf_tr, Y[tr])
            pred[key][te] = st.predict_proba(mf_te)
            secs[key] += time.process_time() - t0
            if key == "default":
                chosen.append(st.chosen_)
    singles = {b: gap_at_k(S[:, b], Y) for b in range(S.shape[1])}
    res = {"items": int(len(Y)), "singles": {str(b): round(v, 4) for b, v in singles.items()}}
    res["best single"] = round(max(singles.values()), 4)
    res.update({k: round(gap_at_k(v, Y), 4) for k, v in pred.items()})
    res["cpu_s"] = {k: round(v, 1) for k, v in secs.items()}
    res["default_chose"] = chosen
    return res


def _meta(S: np.ndarray) -> MetaFeatures:
    n, B, _ = S.shape
    return MetaFeatures(S, np.ones((n, B), bool), [str(b) for b in range(B)], np.zeros((n, 0), np.float32))


def single_inputs(S: np.ndarray, Y: np.ndarray, n: int, outer: int = 5, seed: int = 0) -> list[dict]:
    """Each model stacked alone (nothing to fuse) against its own raw scores, same outer folds."""
    keep = np.sort(np.random.default_rng(seed).choice(len(Y), n, replace=False)) if n < len(Y) else np.arange(len(Y))
    S, Y = S[keep], Y[keep]
    folds = np.random.default_rng(seed + 1).permutation(len(Y)) % outer
    rows = []
    for b in range(S.shape[1]):
        pred, chosen = np.zeros_like(Y), []
        for k in range(outer):
            tr, te = folds != k, folds == k
            st = Stacker(seed=seed).fit(_meta(S[tr][:, [b]]), Y[tr])
            pred[te] = st.predict_proba(_meta(S[te][:, [b]]))
            chosen.append(st.chosen_)
        raw, stacked = gap_at_k(S[:, b], Y), gap_at_k(pred, Y)
        rows.append({"model": b, "raw": round(raw, 4), "stacked": round(stacked, 4), "chose": chosen})
    return rows


def mean_scale_probe(S: np.ndarray, Y: np.ndarray, n: int, outer: int = 5, seed: int = 0) -> dict:
    """Several inputs: the default stacker as it is, and with its logits mapped (monotone, by quantiles on each
    outer fold's training items) onto plain averaging's scale, as the stacker maps one input onto its own."""
    from adtag.models.stacker import to_logits

    keep = np.sort(np.random.default_rng(seed).choice(len(Y), n, replace=False)) if n < len(Y) else np.arange(len(Y))
    S, Y = S[keep], Y[keep]
    folds = np.random.default_rng(seed + 1).permutation(len(Y)) % outer
    pred, mapped, chosen, q = np.zeros_like(Y), np.zeros_like(Y), [], np.linspace(0, 1, 201)
    for k in range(outer):
        tr, te = folds != k, folds == k
        st = Stacker(seed=seed).fit(_meta(S[tr]), Y[tr])
        pred[te] = mapped[te] = st.decision_function(_meta(S[te]))
        chosen.append(st.chosen_)
        if st.chosen_ != "mean":
            mean_tr = to_logits(mean_fusion(S[tr], np.ones(S[tr].shape[:2], bool)))
            m = np.quantile(st.decision_function(_meta(S[tr])), q), np.quantile(mean_tr, q)
            mapped[te] = np.interp(pred[te], *m) + 1e-3 * pred[te]
    return {
        "items": len(Y),
        "default": round(gap_at_k(pred, Y), 4),
        "on mean scale": round(gap_at_k(mapped, Y), 4),
        "chose": chosen,
    }


def mixed(name: str, seed: int = 0, outer: int = 5, inner: int = 3) -> dict:
    """Scores + raw modalities in one manifest: the scored items' own views beside the models' scores.

    adtag's ablation (outer CV, branches K-fold inside) on the raw views alone, then with every
    model's scores added as score modalities; same items, same folds.
    """
    from dataclasses import replace

    from adtag.ablation import run_ablation
    from adtag.data.manifest import Item
    from adtag.data.vocab import Vocabulary
    from adtag.models.tagger import TrainConfig

    S, Y, names = level1(name, seed)
    kind, views, Yall = DATA[name]()
    if kind != "vectors":
        raise SystemExit(f"--mixed takes the vector sets, not {name}")
    n_tr, n_te = SPLIT[name]
    te = np.random.default_rng(seed).permutation(len(Yall))[n_tr : n_tr + n_te]
    tags = [f"t{j:02d}" for j in range(Y.shape[1])]  # sorted, so the vocabulary keeps this order
    out = {"set": name, "items": len(te)}
    for with_scores in (False, True):
        items = []
        for row, i in enumerate(te):
            it = Item(id=str(i), tags=[tags[j] for j in np.flatnonzero(Y[row])] or None)
            it.features = {k: np.asarray(v[i], np.float32) for k, v in views.items()}
            if with_scores:
                it.scores = {m: S[row, b] for b, m in enumerate(names)}
            items.append(it)
        items = [it for it in items if it.tags]
        t0, c0 = time.time(), time.process_time()
        cfg = replace(TrainConfig(), folds=inner, seed=seed)
        res = run_ablation(items, Vocabulary(tags), cfg, outer_folds=outer, fusions=("stack", "paper", "mean"))
        key = "raw+scores" if with_scores else "raw"
        out[key] = {t: {r["name"]: r["gap"] for r in rows} for t, rows in res["tables"].items()}
        out[key]["wall_s"], out[key]["cpu_s"] = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
        print(name, key, json.dumps(out[key]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(DEFAULT_SETS))
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", default=None, help="sets also stacked on all their scored items (default: --sets)")
    ap.add_argument("--out", default=None, help="write scores.{md,json} to this folder")
    ap.add_argument("--markdown", default=None, help="only rewrite scores.md from this scores.json")
    ap.add_argument("--mixed", default=None, help="only the mixed case (scores + raw views) on these sets")
    ap.add_argument("--singles", action="store_true", help="only each model stacked alone vs its raw scores")
    ap.add_argument("--mean-scale-probe", action="store_true", help="only the default stacker mapped onto averaging")
    ap.add_argument("--large-only", action="store_true", help="skip the ~500-item rows (only the --large ones)")
    args = ap.parse_args()
    if args.markdown:
        res = json.loads(Path(args.markdown).read_text())
        Path(args.markdown).with_suffix(".md").write_text(to_markdown(res))
        return
    if args.mixed:
        runtime.configure(1)
        res = [mixed(name) for name in args.mixed.split(",")]
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "scores_mixed.json").write_text(json.dumps(res, indent=1))
        return
    runtime.configure(1)
    if args.mean_scale_probe:
        res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()}
        for name in args.sets.split(","):
            S, Y, _ = level1(name)
            res[name] = mean_scale_probe(S, Y, min(args.small, len(Y)))
            print(name, json.dumps(res[name]), flush=True)
        res["load_after"] = os.getloadavg()
        if args.out:
            (Path(args.out) / "scores_mean_scale_probe.json").write_text(json.dumps(res, indent=1))
        return
    if args.singles:
        res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()}
        for name in args.sets.split(","):
            S, Y, names = level1(name)
            res[name] = [{**r, "model": names[r["model"]]} for r in single_inputs(S, Y, min(args.small, len(Y)))]
            for r in res[name]:
                print(name, json.dumps(r), flush=True)
        res["load_after"] = os.getloadavg()
        if args.out:
            (Path(args.out) / "scores_single_inputs.json").write_text(json.dumps(res, indent=1))
        return
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform()}
    results["load_before"] = os.getloadavg()
    rows = []
    out = Path(args.out) if args.out else None
    data = {}
    # every set on ~500 scored items first, then the sets that have more on all of them
    for large in (True,) if args.large_only else (False, True):
        for name in args.sets.split(","):
            if name not in data:
                t0 = time.time()
                data[name] = (*level1(name), round(time.time() - t0, 1))
            S, Y, names, l1 = data[name]
            n = len(Y) if large else min(args.small, len(Y))
            if large and (n <= args.small or name not in (args.large or args.sets).split(",")):
                continue
            t0, c0 = time.time(), time.process_time()
            r = stack_compare(S, Y, n)
            r["set"], r["models"], r["level1_wall_s"] = name, names, l1
            r["singles"] = {names[int(b)]: v for b, v in r["singles"].items()}
            r["wall_s"], r["process_cpu_s"] = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
            rows.append(r)
            print(
                f"{name:9s} n={n:5d} best={r['best single']:.4f} mean={r['mean']:.4f} "
                f"skl={r['sklearn-stacking']:.4f} paper={r['paper']:.4f} default={r['default']:.4f} "
                f"(d-mean {100 * (r['default'] - r['mean']):+.2f}, "
                f"d-best {100 * (r['default'] - r['best single']):+.2f}) "
                f"chose={r['default_chose']} cpu={r['cpu_s']} wall={r['wall_s']}",
                flush=True,
            )
            results["rows"], results["load_after"] = rows, os.getloadavg()
            if out:  # after every row, so a long run leaves what it measured
                out.mkdir(parents=True, exist_ok=True)
                (out / "scores.json").write_text(json.dumps(results, indent=1))
                (out / "scores.md").write_text(to_markdown(results))


def complementary(r: dict) -> bool:
    """The models complement each other when some baseline fusion (not adtag's) beats the best one."""
    return max(r["mean"], r["sklearn-stacking"], r["paper"]) > r["best single"]


def to_markdown(results: dict) -> str:
    lines = [
        f"Run {results['date']} on {results['machine']}, load {results['load_before']} -> {results['load_after']}",
        "",
        "| set | scored items | models | best single | mean | sklearn-stacking | paper | default | "
        "default - mean | default - best | complementary | default's rung per fold | CPU-s default / paper |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['set']} | {r['items']} | {len(r['models'])} | {r['best single']:.4f} | {r['mean']:.4f} | "
            f"{r['sklearn-stacking']:.4f} | {r['paper']:.4f} | **{r['default']:.4f}** | "
            f"{100 * (r['default'] - r['mean']):+.2f} | {100 * (r['default'] - r['best single']):+.2f} | "
            f"{'yes' if complementary(r) else 'no'} | {', '.join(r['default_chose'])} | "
            f"{r['cpu_s']['default']} / {r['cpu_s']['paper']} |"
        )
    lines.append("")
    for r in results["rows"]:
        if r["items"] == max(x["items"] for x in results["rows"] if x["set"] == r["set"]):
            singles = ", ".join(f"{k} {v:.4f}" for k, v in r["singles"].items())
            lines.append(f"- {r['set']}: {singles}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
