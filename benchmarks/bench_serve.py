"""Load on ``adtag serve`` from another process, over loopback: throughput, latency, errors, memory.

Builds the tests' small model on 8 extracted clips (the JSON requests replay those features),
starts ``adtag serve`` as a child process on 127.0.0.1 (stopped at the end), then drives it with httpx:

1. ``--json`` JSON-modality requests (real extracted features) at concurrency 16;
2. ``--videos`` video uploads at concurrency 4, mixed with bad uploads (empty, not a video,
   truncated, over the size limit) which must get exactly their 4xx;
3. a burst of uploads beyond the extraction pool's capacity: the excess must get 503 + Retry-After.

Server memory (RSS of the server process) is read after a warm-up and again at the end; the server
must still answer /healthz and its temporary folder must be empty. Writes a JSON summary.

    python benchmarks/bench_serve.py [--out benchmarks/results/serve.json] [--json 200] [--videos 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from adtag.data.manifest import read_items  # noqa: E402
from tests.clips import make_clip, truncate  # noqa: E402
from tests.test_serve import build_video_model  # noqa: E402

CAPTIONS = ["SALE", "GAME", "FOOD", "CAR"]
UPLOAD_LIMIT_MB = 4  # small, so that the over-size case is cheap to send


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarise(latencies: list[float], statuses: list[int | str], wall: float) -> dict[str, Any]:
    lat = sorted(latencies)
    counts: dict[str, int] = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return {
        "requests": len(statuses),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(statuses) / wall, 2),
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
        "statuses": counts,
    }


async def drive(requests: list[dict[str, Any]], concurrency: int, base: str) -> tuple[dict[str, Any], list[str]]:
    """Send ``requests`` with at most ``concurrency`` in flight; check each status against its expectation."""
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: list[int | str] = []
    unexpected: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=180, limits=limits) as client:

        async def one(req: dict[str, Any]) -> None:
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post(req["path"], **req["kwargs"])
                    status: int | str = r.status_code
                    if status == 503 and "retry-after" not in r.headers:
                        unexpected.append(f"{req['name']}: 503 without Retry-After")
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                statuses.append(status)
                if status not in req["expect"]:
                    detail = r.text[:160] if isinstance(status, int) else ""
                    unexpected.append(f"{req['name']}: got {status}, expected {req['expect']} {detail}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        wall = time.perf_counter() - t0
    return summarise(latencies, statuses, wall), unexpected


def json_requests(manifest: Path, n: int) -> list[dict[str, Any]]:
    items = read_items(manifest)
    bodies = []
    for it in items:
        feats = {k: np.load(v).tolist() for k, v in it.features.items()}
        bodies.append({"id": it.id, "text": it.text, "features": feats, "extra": it.extra, "top_k": 4})
    return [
        {"name": f"json{i}", "path": "/v1/tag", "kwargs": {"json": bodies[i % len(bodies)]}, "expect": (200,)}
        for i in range(n)
    ]


def upload(name: str, data: bytes, expect: tuple, thumbnails: bool = False) -> dict[str, Any]:
    fields = {"top_k": "4", "thumbnails": "true" if thumbnails else "false"}
    return {"name": name, "path": "/v1/tag", "kwargs": {"files": {"video": (name, data, "video/mp4")}, "data": fields},
            "expect": expect}  # fmt: skip


def video_requests(folder: Path, n: int) -> list[dict[str, Any]]:
    good = []
    for i, word in enumerate(CAPTIONS):
        path = make_clip(folder / f"ad{i}.mp4", seconds=3.0, width=320, height=240, fps=10, captions=[(0, 3, word)])
        good.append(path.read_bytes())
    bad = [
        upload("empty.mp4", b"", (422,)),
        upload("notes.mp4", b"not a video\n" * 100, (422,)),
        upload("cut.mp4", truncate(folder / "ad0.mp4", folder / "cut.mp4", 0.4).read_bytes(), (422,)),
        upload("huge.mp4", b"\0" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 1), (413,)),
    ]
    reqs = [upload(f"ad{i}.mp4", good[i % len(good)], (200,), thumbnails=i % 2 == 0) for i in range(n)]
    mixed = []
    for i, r in enumerate(reqs):  # a bad upload after every 4th good one: 20 good + 5 rounds of bad ones
        mixed.append(r)
        if i % 4 == 3:
            mixed.append(bad[(i // 4) % len(bad)])
    return mixed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=int, default=200, help="JSON-modality requests (default: 200)")
    ap.add_argument("--videos", type=int, default=20, help="good video uploads (default: 20)")
    ap.add_argument("--workers", type=int, default=2, help="server extraction workers (default: 2)")
    ap.add_argument("--queue", type=int, default=4, help="server extraction queue (default: 4)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    t_build = time.perf_counter()
    manifest, model_dir = build_video_model(work / "model")
    build_s = time.perf_counter() - t_build
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_tmp = work / "server_tmp"
    server_tmp.mkdir()
    cmd = [sys.executable, "-m", "adtag.cli", "serve", str(model_dir), "--port", str(port), "--workers",
           str(args.workers), "--queue", str(args.queue), "--threads", "1", "--max-upload-mb", str(UPLOAD_LIMIT_MB),
           "--tmp-dir", str(server_tmp), "--log-level", "warning"]  # fmt: skip
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "server": " ".join(cmd[2:]).replace(str(work), "$WORK"),
        "model_build_s": round(build_s, 1),
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(base + "/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {(work / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        folder = work / "clips"
        folder.mkdir()
        videos = video_requests(folder, args.videos)
        jsons = json_requests(manifest, args.json)
        # Warm-up: first requests pay one-time costs (allocator pools, lazy imports); memory is
        # measured from there on, so growth means a leak, not start-up.
        asyncio.run(drive(jsons[:16] + [videos[0], videos[1]], 4, base))
        result["rss_mib_after_warmup"] = round(rss_mib(server.pid), 1)

        result["json"], bad_json = asyncio.run(drive(jsons, 16, base))
        result["videos"], bad_videos = asyncio.run(drive(videos, 4, base))
        capacity = args.workers + args.queue
        burst = [
            upload(f"burst{i}.mp4", videos[0]["kwargs"]["files"]["video"][1], (200, 503)) for i in range(3 * capacity)
        ]
        result["burst"], bad_burst = asyncio.run(drive(burst, 3 * capacity, base))
        result["rss_mib_after_load"] = round(rss_mib(server.pid), 1)
        # A second identical round: memory that keeps growing round after round would be a leak.
        asyncio.run(drive(jsons, 16, base))
        asyncio.run(drive(videos, 4, base))
        result["rss_mib_after_second_round"] = round(rss_mib(server.pid), 1)
        result["rss_growth_pct"] = round(100 * (result["rss_mib_after_load"] / result["rss_mib_after_warmup"] - 1), 1)
        result["rss_growth_second_round_pct"] = round(
            100 * (result["rss_mib_after_second_round"] / result["rss_mib_after_load"] - 1), 1
        )
        result["unexpected"] = bad_json + bad_videos + bad_burst
        result["healthy_after"] = httpx.get(base + "/healthz", timeout=10).json()
        result["server_alive"] = server.poll() is None
        result["tmp_files_left"] = sorted(p.name for d in server_tmp.iterdir() for p in d.iterdir())
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result["tmp_folder_removed_on_exit"] = not any(server_tmp.iterdir())
    shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if not result.get("unexpected") else 1


if __name__ == "__main__":
    sys.exit(main())
