"""``adtag ablate`` on the issue-11 shape: 500 items x 4 vector modalities of 82 dims (issue 11).

To compare code trees side by side in one run: ``--code before=/path/to/main --code after=.``
(the reference ``adtag train`` runs once, on the first tree).

The items are real: the tag sets of the first ``--items`` TAAC-2021 training videos
(``../shared/data/taac2021/labels/tagging_info_train5k.txt``, 82 tags, ~12 a video). Their four
"modalities" stand for four models' 82-d score vectors, as a team's prediction files are when
passed as vector features: each model sees every tag through its own noise level and misses a
different share of them (so the models are complementary, as real ones are). The command runs
in a fresh process as a user runs it; the reference measured in the same run is ``adtag train``
on the same manifest (one K-fold training: the ablation does ~5 outer folds x all its rows).

Target (issue 11): the ablation within 60 s wall on an idle 2-core machine.

    python benchmarks/bench_ablate.py [--items 500] [--out benchmarks/results/ablate.json]
    python benchmarks/bench_ablate.py --one-fold   # outer fold 0 in-process: CPU-s, and the stackers' share
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import shared_dir  # noqa: E402


def taac_tag_sets(n: int) -> tuple[list[str], list[list[str]]]:
    labels = shared_dir() / "data" / "taac2021" / "labels"
    vocab = [line.split("\t")[0] for line in (labels / "label_id.txt").read_text(encoding="utf-8").splitlines() if line]
    rows = []
    for line in (labels / "tagging_info_train5k.txt").read_text(encoding="utf-8").splitlines()[:n]:
        _, tags = line.split("\t", 1)
        rows.append([t for t in tags.split(",") if t in vocab])
    return vocab, rows


def write_manifest(folder: Path, n: int, seed: int = 0) -> Path:
    vocab, rows = taac_tag_sets(n)
    rng = np.random.default_rng(seed)
    Y = np.zeros((len(rows), len(vocab)), np.float32)
    col = {t: j for j, t in enumerate(vocab)}
    for i, tags in enumerate(rows):
        Y[i, [col[t] for t in tags]] = 1
    prior = Y.mean(0)
    lines = []
    feats = folder / "scores"
    feats.mkdir(parents=True, exist_ok=True)
    models = []
    for m in range(4):
        seen = rng.random(len(vocab)) < 0.75  # each model knows three quarters of the tags well
        noise = np.where(seen, 1.0 + 0.3 * m, 2.5)
        logit = np.log(prior + 1e-3) - np.log(1 - prior + 1e-3) + 2.5 * (Y - prior) / noise
        models.append(1 / (1 + np.exp(-(logit + rng.normal(0, 1, Y.shape) * noise))))
    for i, tags in enumerate(rows):
        entry = {"id": f"v{i:04d}", "tags": tags, "features": {}}
        for m, S in enumerate(models):
            path = feats / f"v{i:04d}_m{m}.npy"
            np.save(path, S[i].astype(np.float32))
            entry["features"][f"model{m}"] = str(path)
        lines.append(json.dumps(entry))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """A process's parent and its CPU-s so far (user + system), from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _proc_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    return "worker" if "spawn_main" in cmd or "popen_loky" in cmd else "tracker" if "tracker" in cmd else "other"


def timed(cmd: list[str], code: str | None = None) -> dict[str, object]:
    """``cmd`` run in a fresh process, on the code tree ``code`` (its root as the working directory:
    ``python -m`` puts the working directory before ``PYTHONPATH``). Its process tree is sampled every
    50 ms for each process's CPU-s (the command itself, its job workers, helpers such as resource
    trackers): a process's last sample misses at most its last 50 ms, the total is the exact one."""
    env = {**os.environ, "PYTHONPATH": str(Path(code).resolve())} if code else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env, cwd=code)
    seen: dict[int, list] = {}  # pid -> [name, CPU-s]
    while proc.poll() is None:
        tree, stats = {proc.pid}, {}
        if os.path.isdir("/proc"):
            for d in os.listdir("/proc"):
                if d.isdigit() and (st := _proc_stat(int(d))) is not None:
                    stats[int(d)] = st
        grown = True
        while grown:  # the command's descendants
            grown = False
            for pid, (parent, _) in stats.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grown = True
        for pid in tree & stats.keys():
            seen.setdefault(pid, ["main" if pid == proc.pid else _proc_name(pid), 0.0])[1] = stats[pid][1]
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    processes = sorted(([name, round(c, 1)] for name, c in seen.values()), key=lambda p: (p[0] != "main", -p[1]))
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "processes": processes}


def one_fold(manifest: Path, stackers: dict | None) -> dict[str, object]:
    """Outer fold 0 of the ablation in this process, one thread: CPU-s of its branches and of each
    row (single modalities, combinations, every fusion), and each row's GAP@20 on the fold's test part."""
    from dataclasses import replace

    from adtag import ablation, runtime
    from adtag.data.manifest import load_manifest
    from adtag.data.vocab import Vocabulary
    from adtag.metrics import gap_at_k
    from adtag.models.tagger import TrainConfig

    runtime.configure(1)
    items = load_manifest(manifest)
    vocab = Vocabulary.from_items([it.tags for it in items])
    Y = vocab.encode([it.tags or [] for it in items], [it.id for it in items])
    tr, te = ablation.make_folds(len(items), 5, 101)[0]
    t0 = time.process_time()
    config = replace(TrainConfig(), fusion="mean", jobs=1)
    fold = ablation._branches(items, Y, vocab, config, tr, te, 0, True)
    order = sorted(fold["mod_gap"], key=lambda m: -fold["mod_gap"][m])
    rs = ablation.FAST_STACKERS if stackers is None else stackers
    rows: dict[str, object] = {}
    for row in ablation._rows(fold, order, tuple(ablation.FUSIONS), config, rs):
        scores, cpu = ablation._row(*ablation._row_job(fold, row))
        rows[row[0]] = {"cpu_s": round(cpu, 1), "gap": None if scores is None else round(gap_at_k(scores, Y[te]), 4)}
    total = round(time.process_time() - t0, 1)
    return {"cpu_s": total, "branches_cpu_s": round(fold["cpu_s"], 1), "stackers": rs, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ablate.json")
    ap.add_argument("--one-fold", action="store_true", help="outer fold 0 in-process: CPU-s per row")
    ap.add_argument("--code", action="append", help="NAME=PATH: ablate with that code tree (repeat: side by side)")
    ap.add_argument("--stackers", type=json.loads, default=None, help="--one-fold: rows' stackers (JSON)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ablate-"))
    manifest = write_manifest(work / "data", args.items)
    if args.one_fold:
        print(json.dumps(one_fold(manifest, args.stackers), indent=1))
        return
    codes = dict(c.split("=", 1) for c in args.code) if args.code else {"this": str(ROOT)}
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_before": os.getloadavg(),
        "items": args.items,
        "modalities": "4 vector modalities of 82 dims (four models' scores)",
        "code": codes,
    }
    adtag = [sys.executable, "-m", "adtag.cli"]
    first = next(iter(codes.values()))
    cmd = [*adtag, "train", str(manifest), "--out", str(work / "model"), "--no-progress"]
    result["train"] = {**timed(cmd, first), "code": first}  # the reference, on the first tree
    runs: dict[str, dict] = {}
    for name, path in codes.items():
        out = work / f"ablation-{name}"
        run = timed([*adtag, "ablate", str(manifest), "--out", str(out), "--no-progress"], path)
        run["load_after"] = os.getloadavg()
        saved = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
        run["rows"] = {f"{t}:{r['name']}": r["gap"] for t, rows in saved["tables"].items() for r in rows}
        run["cpu_by_row"] = saved.get("cpu_s")  # per row, summed over the outer folds (CPU-s inside the jobs)
        run["cpu_outside_rows"] = round(run["cpu_s"] - sum(run["cpu_by_row"].values()), 1)
        run["stacker_options"] = saved.get("stacker_options")
        run["tables"] = (out / "ablation.md").read_text(encoding="utf-8")
        run["ablate_over_train_wall"] = round(run["wall_s"] / result["train"]["wall_s"], 2)
        runs[name] = run
    result["ablate"], result["load_after"] = runs, os.getloadavg()
    result["same_rows"] = all(run["rows"] == runs[next(iter(runs))]["rows"] for run in runs.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    names = list(runs)
    print(json.dumps({k: v for k, v in result.items() if k != "ablate"}, indent=2))
    print("| row | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    print("| wall s / CPU-s | " + " | ".join(f"{runs[n]['wall_s']} / {runs[n]['cpu_s']}" for n in names) + " |")
    print("| CPU-s outside the rows | " + " | ".join(str(runs[n]["cpu_outside_rows"]) for n in names) + " |")
    print("| CPU-s per process | " + " | ".join(str(runs[n]["processes"]) for n in names) + " |")
    for row in runs[names[-1]]["rows"]:
        print(f"| {row} | " + " | ".join(str(runs[n]["rows"].get(row, "")) for n in names) + " |")
    print(runs[names[-1]]["tables"])


if __name__ == "__main__":
    main()
