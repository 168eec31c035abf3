"""Training speed and quality on realistic multi-label Chinese text, before and after, in one run.

Items are built from real headlines (../shared/data/zh_text: CLUE TNEWS dev/test with keywords,
THUCNews, NLPCC 2017): each item joins 2-4 headlines of different classes; its tags are their
classes plus sub-topics (a class x one of its most distinctive words, when a headline of that
class contains the word), 100+ tags. Four free-text modalities of 30-120 words each (a "script",
a "description", an "ocr" and an "asr" view: the item's headlines with some dropped, characters
lost, and 1-4 unrelated distractor headlines, shuffled), plus three extras. The same manifest is
trained by each code tree given with ``--code NAME=PATH`` in its own process (PYTHONPATH=PATH),
then a reference: scikit-learn one-vs-rest logistic regression on the same TF-IDF features.
Each row reports wall and CPU seconds, out-of-fold GAP (plain averaging) and GAP@20 on new items.

    python benchmarks/bench_text.py --code before=/tmp/train-before --code after=.

``--branches [NAMES]`` gives CPU-s, solver evaluations and held-out GAP per branch and fold (fold 1
selects the alpha, folds 2-5 reuse it), each tree in its own process on the same items.
``--text-models lr`` trains the text modalities with logistic regression only (no SVM branches).
``--tokenize`` times word splitting of 5k-40k characters of Chinese without spaces (random
characters, the worst case for jieba's HMM, and real headlines run together) per code tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ADTAG_SHARED", ROOT.parent / "shared")) / "data"

# Class names of the three sources mapped onto one taxonomy (synonyms merged).
_SYN = {"realty": "house", "stocks": "stock", "education": "edu", "science": "tech", "regimen": "health"}


def load_headlines() -> list[tuple[str, str, str]]:
    """(class, headline, keywords) from the three sources."""
    zh = SHARED / "zh_text"
    out = []
    for part in ("dev", "test"):
        for line in (zh / "tnews" / f"{part}.json").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if "label_desc" in r:
                out.append((r["label_desc"].removeprefix("news_"), r["sentence"], r.get("keywords", "")))
    names = (zh / "thucnews" / "class.txt").read_text(encoding="utf-8").split()
    for part in ("dev", "test"):
        for line in (zh / "thucnews" / f"{part}.txt").read_text(encoding="utf-8").splitlines():
            text, lab = line.rsplit("\t", 1)
            out.append((names[int(lab)], text, ""))
    for line in (zh / "nlpcc2017" / "test.word").read_text(encoding="utf-8").splitlines():
        lab, text = line.split("\t", 1)
        out.append((lab, text.replace(" ", ""), ""))
    return [(_SYN.get(c, c), t, k) for c, t, k in out]


def _subtopics(pool: list[tuple[str, str, str]], per_class: int, seed: int) -> dict[str, list[str]]:
    """Per class, its most distinctive frequent words (2+ characters), from a sample of headlines."""
    import jieba

    jieba.setLogLevel(60)
    rng = random.Random(seed)
    sample = rng.sample(pool, min(len(pool), 12000))
    by_class: dict[str, Counter] = {}
    total: Counter = Counter()
    for c, t, _ in sample:
        ws = {w for w in jieba.lcut(t) if len(w) >= 2 and not w.isascii()}
        by_class.setdefault(c, Counter()).update(ws)
        total.update(ws)
    out = {}
    for c, cnt in by_class.items():
        scored = sorted((w for w, k in cnt.items() if k >= 8), key=lambda w: -(cnt[w] / total[w]) * np.log(cnt[w]))
        out[c] = scored[:per_class]
    return out


def make_items(n_items: int, seed: int = 0, per_class: int = 6) -> list[dict]:
    """Manifest rows (JSON) of realistic multi-label text items; deterministic in ``seed``."""
    pool = load_headlines()
    subs = _subtopics(pool, per_class, seed)
    rng = random.Random(seed + 1)
    rng.shuffle(pool)
    by_class: dict[str, list[int]] = {}
    for i, (c, _, _) in enumerate(pool):
        by_class.setdefault(c, []).append(i)
    classes = sorted(by_class)
    used = 0
    rows = []

    def lossy(t: str) -> str:  # characters lost as OCR/ASR lose them
        return "".join(ch for ch in t if rng.random() > 0.08)

    for i in range(n_items):
        k = rng.choice((2, 2, 3, 3, 4))
        cls = rng.sample(classes, k)
        heads = []
        for c in cls:
            heads.append(pool[by_class[c][(used + i) % len(by_class[c])]])
        used += 1
        tags = set(cls)
        for c, t, _ in heads:
            tags.update(f"{c}/{w}" for w in subs.get(c, []) if w in t)
        distract = [pool[rng.randrange(len(pool))][1] for _ in range(4)]
        texts = {}
        for view in ("script", "description", "ocr", "asr"):
            kept = [t for _, t, _ in heads if rng.random() > 0.2] or [heads[0][1]]
            parts = kept + rng.sample(distract, rng.randint(1, 4))
            rng.shuffle(parts)
            if view in ("ocr", "asr"):
                parts = [lossy(p) for p in parts]
            sep = "，" if view == "asr" else "。"
            texts[view] = sep.join(parts)
        kws = [k for _, _, k in heads if k]
        if kws:  # the TNEWS keywords, appended to the description as a platform would
            texts["description"] += " 关键词：" + " ".join(kws).replace(",", " ")
        n_words = sum(len(t) for t in texts["script"]) / 2
        rows.append(
            {
                "id": f"t{i}",
                "tags": sorted(tags),
                "text": texts,
                "extra": {
                    "duration": round(5 + n_words * 0.3 + rng.random() * 10, 1),
                    "width": rng.choice((720, 1080, 1280)),
                    "height": rng.choice((720, 1280, 1920)),
                },
            }
        )
    return rows


def write_manifest(rows: list[dict], path: Path) -> Path:
    """Vectors go to .npy files next to the manifest (the manifest's own format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            r = dict(r)
            if "features" in r:
                fdir = path.parent / "npy"
                fdir.mkdir(exist_ok=True)
                feats = {}
                for name, v in r["features"].items():
                    np.save(fdir / f"{r['id']}_{name}.npy", np.asarray(v, np.float32))
                    feats[name] = f"npy/{r['id']}_{name}.npy"
                r["features"] = feats
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


_TRAIN_SNIPPET = r"""
import json, os, sys, time
from pathlib import Path
import numpy as np
from adtag import runtime
from adtag.data.manifest import read_items
from adtag.metrics import gap_at_k
from adtag.models.tagger import Tagger, TrainConfig
runtime.configure(1)
train, test = read_items(Path(sys.argv[1])), read_items(Path(sys.argv[2]))
t0, c0 = time.perf_counter(), time.process_time()
cfg = TrainConfig(folds=5)
if sys.argv[3:]:  # the text modalities' branch models, e.g. "lr" (no SVM branches)
    cfg.branch_models["text"] = sys.argv[3].split(",")
jobs = []  # per job of the workers (featurizers, branch folds): name, worker, start/end (s), CPU-s


def timed(fn, *args):  # pickled by value into the workers (cloudpickle)
    w0, p0 = time.time(), time.process_time()
    out = fn(*args)
    return out, (os.getpid(), w0, time.time(), time.process_time() - p0)


def profiled(fn, work):
    from adtag.engines.local import run_parallel
    for job, (out, (pid, w0, w1, cpu)) in zip(work, run_parallel(timed, [(fn, *j) for j in work], n_jobs=cfg.jobs)):
        fold = f" fold {job[6] + 1}" if fn.__name__ == "fit_branch_fold" else ""
        jobs.append({"job": f"{getattr(job[0], 'name', '?')}{fold}", "pid": pid, "start": round(w0 - w_0, 1),
                     "end": round(w1 - w_0, 1), "cpu_s": round(cpu, 2)})
        yield out


w_0 = time.time()
profile = os.environ.get("BENCH_PROFILE") == "1"
tagger = Tagger(cfg).fit(train, progress=False, log=lambda *a: None, map_fn=profiled if profile else None)
train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
stages = {}
if profile:  # wall clock per stage: featurizing, branches, the stacker after the last branch job
    feats = [j["end"] for j in jobs if "fold" not in j["job"]]
    stages = {"featurize_s": max(feats, default=0.0), "branches_end_s": max(j["end"] for j in jobs)}
    stages["after_branches_s"] = round(train_s - stages["branches_end_s"], 1)
    by_pid = {}
    for j in jobs:
        by_pid[j["pid"]] = by_pid.get(j["pid"], 0) + j["cpu_s"]
    stages["worker_cpu_s"] = {str(k): round(v, 1) for k, v in by_pid.items()}
t1 = time.perf_counter()
scores = tagger.predict_proba(test)
pred_s = time.perf_counter() - t1
idx = {t: i for i, t in enumerate(tagger.vocab_.tags)}
Y = np.zeros(scores.shape, np.float32)
for r, it in enumerate(test):
    for t in it.tags:
        if t in idx:
            Y[r, idx[t]] = 1
print(json.dumps({
    "train_s": round(train_s, 1), "main_cpu_s": round(cpu_s, 1), "predict_s": round(pred_s, 2),
    "test_gap": round(gap_at_k(scores, Y), 4), "mean_oof_gap": tagger.metrics_.get("mean_oof_gap"),
    "stacker_holdout_gap": tagger.metrics_.get("stacker_holdout_gap"),
    "branch_oof_gap": tagger.metrics_.get("branch_oof_gap"), "stages": stages, "jobs": jobs,
    "stacker_rung": getattr(tagger.fusion_, "chosen_", None),
    "stacker_cv_gap": getattr(tagger.fusion_, "cv_gap_", None),
}))
"""


_BRANCH_SNIPPET = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import scipy.sparse as sp
from adtag import runtime
from adtag.data.manifest import read_items
from adtag.data.modalities import infer_modalities, raw_values
from adtag.data.vocab import Vocabulary
from adtag.metrics import gap_at_k
from adtag.models import linear
from adtag.models.branch import make_branch_model, make_folds
from adtag.featurize import make_featurizer
from adtag.models.tagger import Tagger, TrainConfig
runtime.configure(1)
items, only = read_items(Path(sys.argv[1])), sys.argv[2].split(",") if sys.argv[2] else None
evals = [0]
solve = linear.minimize_lbfgs
def counted(fun, *a, **k):
    def f(w):
        evals[0] += 1
        return fun(w)
    return solve(f, *a, **k)
linear.minimize_lbfgs = counted
t = Tagger(TrainConfig())
t.vocab_ = Vocabulary.from_items([it.tags for it in items])
Y = t.vocab_.encode([it.tags for it in items], [it.id for it in items])
t.specs_ = infer_modalities(items, None)
out = {"featurize_cpu_s": {}, "branches": {}}
t.featurizers_ = {}
for spec in t.specs_:
    c0 = time.process_time()
    t.featurizers_[spec.name] = make_featurizer(spec).fit(*raw_values(items, spec))
    out["featurize_cpu_s"][spec.name] = round(time.process_time() - c0, 1)
specs, inputs, present, extras = t._branch_inputs(t.features(items))
folds = make_folds(len(items), 5, 0)
for b, spec in enumerate(specs):
    if only and spec.name not in only:
        continue
    X, prev, rec = inputs(spec), None, []
    for k, (tr, va) in enumerate(folds):
        tr, va = tr[present[tr, b]], va[present[va, b]]
        est, evals[0], c0 = make_branch_model(spec.model, k), 0, time.process_time()
        est.fit_fold(X, Y, tr, va, prev)
        cpu = time.process_time() - c0
        gap = round(float(gap_at_k(est.predict_proba(X[va]), Y[va])), 4)
        rec.append({"cpu_s": round(cpu, 2), "evals": evals[0], "gap": gap})
        prev = prev or est
    nnz = int(X.nnz) if sp.issparse(X) else int(np.size(X))
    alpha = getattr(prev, "alpha_", None)
    out["branches"][spec.name] = {"columns": int(X.shape[1]), "nnz": nnz, "alpha": alpha, "folds": rec}
    print(spec.name, json.dumps(out["branches"][spec.name]), file=sys.stderr, flush=True)
print(json.dumps(out))
"""


_TOKENIZE_SNIPPET = r"""
import json, random, time
try:  # the module's home before the move
    from adtag.data.tokenize import words
except ImportError:
    from adtag.models.tokenize import words
heads = [json.loads(l)["sentence"] for l in open(__import__("sys").argv[1], encoding="utf-8")]
real = "".join(heads)
rnd = random.Random(0)
rand = "".join(chr(rnd.randint(0x4E00, 0x9FA5)) for _ in range(40000))
words("预热")
out = {}
for n in (5000, 10000, 20000, 40000):
    for name, text in (("random", rand[:n]), ("headlines", real[:n])):
        t0 = time.perf_counter(); words(text); out[f"{name} {n}"] = round(time.perf_counter() - t0, 3)
print(json.dumps(out))
"""


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_code(code: Path, args: list[str], env_extra: dict | None = None) -> tuple[str, float, float]:
    env = dict(os.environ, PYTHONPATH=str(code.resolve()), OMP_NUM_THREADS="1", ORT_DISABLE_TELEMETRY="1")
    env.update(env_extra or {})
    c0, t0 = _child_cpu(), time.perf_counter()
    res = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=str(code.resolve()))
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if res.returncode != 0:
        raise RuntimeError(f"{code}: {res.stderr[-3000:]}")
    return res.stdout, wall, cpu


def sklearn_reference(train: list[dict], test: list[dict]) -> dict:
    """One-vs-rest logistic regression on the same word 1-2-gram TF-IDF, modalities side by side."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    sys.path.insert(0, str(ROOT))
    from adtag.data.tokenize import ngrams
    from adtag.metrics import gap_at_k

    t0, c0 = time.perf_counter(), time.process_time()
    xs_tr, xs_te = [], []
    for view in ("script", "description", "ocr", "asr"):
        vec = TfidfVectorizer(analyzer=ngrams, min_df=2, sublinear_tf=True, max_features=100_000)
        xs_tr.append(vec.fit_transform([r["text"][view] for r in train]))
        xs_te.append(vec.transform([r["text"][view] for r in test]))
    feat_s = time.perf_counter() - t0
    Xtr, Xte = sp.hstack(xs_tr, format="csr"), sp.hstack(xs_te, format="csr")
    mlb = MultiLabelBinarizer().fit([r["tags"] for r in train])
    Ytr = mlb.transform([r["tags"] for r in train])
    known = set(mlb.classes_)
    Yte = mlb.transform([[t for t in r["tags"] if t in known] for r in test])
    clf = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear")).fit(Xtr, Ytr)
    scores = clf.predict_proba(Xte)
    return {
        "train_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "featurize_s": round(feat_s, 1),
        "test_gap": round(gap_at_k(scores, Yte.astype(np.float32)), 4),
    }


def sklearn_branch_reference(train: list[dict], view: str) -> dict:
    """One fold of a text branch the scikit-learn way: one-vs-rest liblinear LR on one view's TF-IDF."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    sys.path.insert(0, str(ROOT))
    from adtag.data.tokenize import ngrams
    from adtag.metrics import gap_at_k
    from adtag.models.branch import make_folds

    tr, va = make_folds(len(train), 5, 0)[0]
    X = TfidfVectorizer(analyzer=ngrams, min_df=2, sublinear_tf=True).fit_transform([r["text"][view] for r in train])
    Y = MultiLabelBinarizer().fit_transform([r["tags"] for r in train])
    c0 = time.process_time()
    clf = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear")).fit(X[tr], Y[tr])
    cpu = time.process_time() - c0
    gap = gap_at_k(clf.predict_proba(X[va]).astype(np.float32), Y[va].astype(np.float32))
    return {"view": view, "columns": X.shape[1], "fold_cpu_s": round(cpu, 1), "fold1_gap": round(float(gap), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", action="append", default=[], help="NAME=PATH of a code tree to time (repeatable)")
    ap.add_argument("--items", type=int, default=7800)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--tokenize", action="store_true", help="time word splitting of long texts instead")
    ap.add_argument(
        "--branches",
        nargs="?",
        const="all",
        help="CPU-s per branch and fold instead of the end-to-end run (optionally a comma list, e.g. script/lr)",
    )
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="end-to-end runs also record every worker job (featurizers, branch folds: start, end, CPU-s) "
        "and the wall clock per stage (code trees whose Tagger.fit takes map_fn)",
    )
    ap.add_argument("--text-models", default="", help="branch models of the text modalities (default: lr,svm)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1])) for c in args.code] or [("current", ROOT)]
    load = [os.getloadavg()]
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.tokenize:
            src = SHARED / "zh_text" / "tnews" / "dev.json"
            for name, code in codes:
                out, wall, cpu = run_code(code, ["-c", _TOKENIZE_SNIPPET, str(src)])
                result["runs"][name] = json.loads(out.strip().splitlines()[-1])
                load.append(os.getloadavg())
                print(name, result["runs"][name], flush=True)
            stem = "text_tokenize"
        else:
            t0 = time.perf_counter()
            rows = make_items(args.items + args.test)
            train, test = rows[: args.items], rows[args.items :]
            tags = {t for r in train for t in r["tags"]}
            words = [len(r["text"]["script"]) / 1.6 for r in train]  # ~1.6 characters per jieba word
            result["data"] = {
                "items": len(train),
                "test_items": len(test),
                "tags": len(tags),
                "tags_per_item": round(float(np.mean([len(r["tags"]) for r in train])), 2),
                "script_words_median": round(float(np.median(words)), 1),
                "generate_s": round(time.perf_counter() - t0, 1),
            }
            print(result["data"], flush=True)
            m_tr = write_manifest(train, Path(tmp) / "train.jsonl")
            m_te = write_manifest(test, Path(tmp) / "test.jsonl")
            if args.branches:
                only = "" if args.branches == "all" else args.branches
                for name, code in codes:
                    out, wall, cpu = run_code(code, ["-c", _BRANCH_SNIPPET, str(m_tr), only])
                    result["runs"][name] = {**json.loads(out.strip().splitlines()[-1]), "cpu_s": round(cpu, 1)}
                    load.append(os.getloadavg())
                    print(name, json.dumps(result["runs"][name]), flush=True)
                if not args.no_sklearn:
                    result["runs"]["sklearn-ovr-lr, script, fold 1"] = sklearn_branch_reference(train, "script")
                    print("sklearn", result["runs"]["sklearn-ovr-lr, script, fold 1"], flush=True)
                codes, args.no_sklearn = [], True
            for name, code in codes:
                out, wall, cpu = run_code(
                    code,
                    ["-c", _TRAIN_SNIPPET, str(m_tr), str(m_te), *filter(None, [args.text_models])],
                    {"BENCH_PROFILE": "1" if args.profile else "0"},
                )
                r = json.loads(out.strip().splitlines()[-1])
                r.update(wall_s=round(wall, 1), cpu_s=round(cpu, 1))
                result["runs"][name] = r
                load.append(os.getloadavg())
                print(name, {k: v for k, v in r.items() if k not in ("branch_oof_gap", "jobs")}, flush=True)
            if not args.no_sklearn:
                result["runs"]["sklearn-ovr-lr"] = sklearn_reference(train, test)
                load.append(os.getloadavg())
                print("sklearn", result["runs"]["sklearn-ovr-lr"], flush=True)
            stem = "text_branches" if args.branches else "text_train"
            result["text_models"] = args.text_models or "default"
    result["load_average_1m"] = [round(x[0], 2) for x in load]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
