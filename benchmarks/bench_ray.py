"""The Ray engine against the local engine on this machine: extraction CPU and training wall time.

Everything runs inside fresh network + PID namespaces (``unshare -n -p -f --mount-proc``, as the
tests) placed in a cpuacct cgroup of its own: Ray sees loopback only, and the CPU of every process
(drivers, workers, Ray's daemons) is counted, Ray's own overhead included. Extraction: the same
N copies of benchmarks/bench_extract.py's 30 s 720p ad, default encoders, local engine with 2
workers, then a one-node Ray cluster (2 CPUs) with 1 and 2 actors.
Training: bench_scale.py's synthetic items, 5-fold, local (2 worker processes) vs Ray tasks.

    python benchmarks/bench_ray.py [--clips 20] [--items 2000] [--skip-extract] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PORT = 6391
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "ORT_DISABLE_TELEMETRY": "1"}
TICK = os.sysconf("SC_CLK_TCK")


CGROUP = Path("/sys/fs/cgroup/cpuacct")


def namespace_cpu() -> float:
    """CPU-seconds used so far by every process of the namespace, dead ones included.

    The namespace runs in its own cpuacct cgroup: summing /proc undercounts, because Ray's raylet
    lets its finished workers be reaped without adding their time to anyone's cutime.
    """
    return int((Path(os.environ["ADTAG_BENCH_CGROUP"]) / "cpuacct.usage").read_text()) / 1e9


def measured(argv: list[str], env: dict) -> dict:
    c0, t0 = namespace_cpu(), time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, namespace_cpu() - c0
    if r.returncode != 0:
        raise RuntimeError(f"{argv} failed: {r.stderr[-2000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def ray_start(temp: str, cpus: int) -> None:
    ray_exe = str(Path(sys.executable).with_name("ray"))
    subprocess.run(
        [ray_exe, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(PORT), "--num-cpus", str(cpus)]
        + ["--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp],
        check=True,
        capture_output=True,
    )


def inside(args: argparse.Namespace) -> dict:
    """Runs as PID 1 of the namespace."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    res: dict = {}
    work = Path(args.work)
    adtag = [sys.executable, "-m", "adtag.cli"]
    video_seconds = 30.0 * args.clips
    if not args.skip_extract:
        runs = {}
        runs["local_2_workers"] = measured(
            [*adtag, "extract", str(work / "clips"), "--out", str(work / "local2"), "--workers", "2", "--no-progress"],
            env,
        )
    ray_start(args.temp, 2)
    env["RAY_ADDRESS"] = f"127.0.0.1:{PORT}"
    time.sleep(5)
    c0, t0 = namespace_cpu(), time.perf_counter()
    time.sleep(30)  # what Ray's daemons (GCS, raylet, agents) burn with nothing to do
    res["ray_idle_cluster_cpu_s_per_s"] = round((namespace_cpu() - c0) / (time.perf_counter() - t0), 4)
    if not args.skip_extract:
        for n in (1, 2):
            runs[f"ray_{n}_actor{'s' if n > 1 else ''}"] = measured(
                [*adtag, "extract", str(work / "clips"), "--out", str(work / f"ray{n}"), "--engine", "ray"]
                + ["--workers", str(n), "--no-progress"],
                env,
            )
        for r in runs.values():
            r["cpu_s_per_video_second"] = round(r["cpu_s"] / video_seconds, 4)
            r["videos_per_minute"] = round(args.clips / r["wall_s"] * 60, 1)
        local, ray2 = runs["local_2_workers"]["cpu_s"], runs["ray_2_actors"]["cpu_s"]
        res["extract"] = {
            "clips": args.clips,
            "clip": "30 s 1280x720 H.264 + AAC with speech and captions (bench_extract.py), default encoders",
            "runs": runs,
            "ray_2_vs_local_2_cpu_ratio": round(ray2 / local, 3),
            "ray_overhead_cpu_s_per_video": round((ray2 - local) / args.clips, 2),
            "ray_idle_daemons_share_of_overhead_cpu_s": round(
                res["ray_idle_cluster_cpu_s_per_s"] * runs["ray_2_actors"]["wall_s"], 1
            ),
        }
    if not args.skip_train:
        train = {}
        for engine in ("local", "ray"):
            c0, t0 = namespace_cpu(), time.perf_counter()
            argv = [sys.executable, str(Path(__file__).resolve()), "--fit", engine, "--items", str(args.items)]
            r = subprocess.run(argv, env=env, capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(r.stderr[-3000:])
            train[engine] = {
                **json.loads(r.stdout.strip().splitlines()[-1]),
                "process_wall_s": round(time.perf_counter() - t0, 1),
                "cpu_s": round(namespace_cpu() - c0, 1),
            }
        assert train["ray"]["mean_oof_gap"] == train["local"]["mean_oof_gap"], train  # the same model
        train["ray_vs_local_fit_wall_ratio"] = round(train["ray"]["fit_s"] / train["local"]["fit_s"], 3)
        res["train"] = {"items": args.items, "tags": 150, "folds": 5, **train}
    return res


def fit(engine: str, n_items: int) -> None:
    """One training run of bench_scale's items (5 folds); prints the seconds ``fit`` took."""
    from adtag import runtime

    runtime.configure(1)
    from adtag.models.tagger import Tagger, TrainConfig
    from benchmarks.bench_scale import make_items

    items = make_items(n_items, 150, seed=0)
    kw = {}
    if engine == "ray":
        import ray

        from adtag.engines.ray_map import ray_map

        ray.init(address="auto", log_to_driver=False, logging_level="warning")
        kw["map_fn"] = ray_map
    t = time.perf_counter()
    tagger = Tagger(TrainConfig(folds=5)).fit(items, progress=False, log=lambda *_: None, **kw)
    print(json.dumps({"fit_s": round(time.perf_counter() - t, 1), "mean_oof_gap": tagger.metrics_["mean_oof_gap"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--items", type=int, default=2000, help="training items (bench_scale uses 8000)")
    ap.add_argument("--skip-extract", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray.json")
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    ap.add_argument("--fit", choices=["local", "ray"], help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--temp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fit:
        return fit(args.fit, args.items)
    if args.inside:
        Path(args.inside).write_text(json.dumps(inside(args)))
        return
    work = Path(tempfile.mkdtemp(prefix="adtag-bench-ray-"))
    temp = tempfile.mkdtemp(prefix="abr-", dir="/tmp")  # Ray's socket paths must stay short
    try:
        if not args.skip_extract:
            from benchmarks.bench_extract import make_benchmark_clip

            clips = work / "clips"
            clips.mkdir()
            first = make_benchmark_clip(clips / "ad00.mp4")
            for i in range(1, args.clips):
                shutil.copy(first, clips / f"ad{i:02d}.mp4")
        load_before = os.getloadavg()
        t0 = time.time()
        me = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
        me += ["--inside", str(work / "res.json"), "--work", str(work), "--temp", temp]
        inner = "ip link set lo up && exec " + " ".join(f"'{a}'" for a in me)
        cgroup = CGROUP / f"adtag-bench-ray-{os.getpid()}"
        cgroup.mkdir()

        def join() -> None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

        env = {**os.environ, "ADTAG_BENCH_CGROUP": str(cgroup)}
        try:
            r = subprocess.run(
                ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", inner], cwd=ROOT, env=env, preexec_fn=join
            )
        finally:
            cgroup.rmdir()
        if r.returncode:
            sys.exit(r.returncode)
        res = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
            "machine": f"{platform.platform()}, {os.cpu_count()} cores",
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            **json.loads((work / "res.json").read_text()),
        }
        print(json.dumps(res, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
