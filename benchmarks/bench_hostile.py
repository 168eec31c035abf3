"""Hostile inputs against ``adtag serve`` in its own process on 127.0.0.1 (issue 15), plus the CLI.

For each hostile input: its status, the seconds to its answer, and the latency of normal JSON tag
requests sent back to back while it is in flight (p50/p99, against a reference measured first in
the same run). Then memory: RSS of the server after 50 uploads and after up to ``--uploads``
(bounded by ``--upload-minutes``), with the allocator as shipped and, in a second server, with
glibc's defaults (``ADTAG_MALLOC=default``), to show where the growth went. Then the data layer
(``adtag train`` on a .npy whose header claims 409600 x 1280, and on a text file named .npy) and a
kill -9 during an upload followed by a restart.

Targets: every hostile input answered within 5 s, normal p99 within 2x the reference, no 500,
RSS after N uploads within 10% of RSS after 50.

    python benchmarks/bench_hostile.py [--uploads 500] [--upload-minutes 8] [--out benchmarks/results/hostile.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from adtag.data.manifest import read_items  # noqa: E402
from tests.clips import make_clip, truncate  # noqa: E402
from tests.test_serve import build_video_model  # noqa: E402

UPLOAD_LIMIT_MB = 4
ENV = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(1000 * v[min(len(v) - 1, int(q * len(v)))], 1)


class Server:
    """``adtag serve`` as a child process on a free loopback port."""

    def __init__(self, model_dir: Path, tmp: Path, log: Path, env: dict[str, str] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.manifest: Path | None = None
        self.cmd = [sys.executable, "-m", "adtag.cli", "serve", str(model_dir), "--port", str(self.port),
                    "--workers", "2", "--queue", "4", "--threads", "1", "--max-upload-mb", str(UPLOAD_LIMIT_MB),
                    "--tmp-dir", str(tmp), "--log-level", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(self.cmd, env=env or ENV, stdout=subprocess.DEVNULL, stderr=open(log, "a"))
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(self.base + "/healthz", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def normal_body(manifest: Path) -> dict[str, Any]:
    it = read_items(manifest)[0]
    feats = {k: np.load(v).tolist() for k, v in it.features.items()}
    return {"id": it.id, "text": it.text, "features": feats, "extra": it.extra, "top_k": 4}


def normal_latencies(base: str, body: dict, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for _ in range(n):
            t0 = time.perf_counter()
            c.post("/v1/tag", json=body).raise_for_status()
            out.append(time.perf_counter() - t0)
    return out


def _probe(base: str, body: dict, ready: Any, stop: Any, out: Any) -> None:
    """Normal requests back to back until ``stop``; (latencies, statuses) into ``out``."""
    lat: list[float] = []
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=60) as c:
        c.get("/healthz")
        ready.set()
        while not stop.is_set():
            t0 = time.perf_counter()
            statuses.append(c.post("/v1/tag", json=body).status_code)
            lat.append(time.perf_counter() - t0)
    out.put((lat, statuses))


def during(base: str, body: dict, hostile: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Send ``hostile`` again and again for ``seconds`` (at least once, at most 60 times) while normal
    requests go out back to back from another process (as from another client: building and sending a
    hostile body must not slow the normal client's own timing); its statuses and answer times, and
    the normal latencies."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop, q = ctx.Event(), ctx.Event(), ctx.Queue()
    prober = ctx.Process(target=_probe, args=(base, body, ready, stop, q), daemon=True)
    prober.start()
    ready.wait(60)
    runs: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    while not runs or (time.perf_counter() - t_start < seconds and len(runs) < 60):
        t0 = time.perf_counter()
        try:
            out = hostile()
        except Exception as exc:  # a hostile input that breaks the client is a result too
            out = {"status": f"client error: {type(exc).__name__}: {exc}"[:200]}
        out.setdefault("answer_s", round(time.perf_counter() - t0, 2))
        runs.append(out)
    stop.set()
    lat, statuses = q.get(timeout=120)
    prober.join(30)
    first = dict(runs[0])
    first["runs"] = len(runs)
    first["statuses"] = sorted({str(r["status"]) for r in runs})
    first["answer_s_max"] = max(r["answer_s"] for r in runs)
    first["normal"] = {"n": len(lat), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                       "non_200": sum(s != 200 for s in statuses)}  # fmt: skip
    return first


def post(base: str, **kwargs: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = httpx.post(base + "/v1/tag", timeout=120, **kwargs)
    out: dict[str, Any] = {"status": r.status_code, "answer_s": round(time.perf_counter() - t0, 2)}
    out["response_bytes"] = len(r.content)
    try:
        body = r.json()
        out["detail"] = str(body.get("detail", ""))[:160] if r.status_code != 200 else None
        if r.status_code == 200:
            out["id"] = body["id"]
            out["warnings"] = [w[:120] for w in body.get("warnings", [])]
    except (ValueError, AttributeError):
        pass
    return out


def raw_json(base: str, text: str | bytes) -> dict[str, Any]:
    content = text.encode() if isinstance(text, str) else text
    return post(base, content=content, headers={"content-type": "application/json"})


def trickle(port: int, clients: int, every: float, upload: bytes, base: str) -> dict[str, Any]:
    """``clients`` sockets sending an upload body one byte every ``every`` s; a real upload meanwhile."""
    head = (b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000000\r\n\r\n--b\r\n")  # fmt: skip
    results: list[tuple[int, float]] = []

    def one() -> None:
        t0 = time.monotonic()
        status = 0
        with socket.create_connection(("127.0.0.1", port), timeout=every) as s:
            s.sendall(head)
            while time.monotonic() - t0 < 60:
                try:
                    data = s.recv(4096)
                    if data:
                        status = int(data.split(b" ", 2)[1])
                        break
                except TimeoutError:
                    pass
                try:
                    s.sendall(b"x")
                except OSError:
                    break
        results.append((status, time.monotonic() - t0))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    real = post(base, files={"video": ("real.mp4", upload, "video/mp4")}, data={"top_k": "3"})
    for t in threads:
        t.join(90)
    return {
        "status": sorted({s for s, _ in results}),
        "answer_s": round(max(t for _, t in results), 2),
        "real_upload_meanwhile": {"status": real["status"], "answer_s": real["answer_s"]},
    }


def hostile_rows(server: Server, work: Path) -> dict[str, dict[str, Any]]:
    base, rows = server.base, {}
    clip = make_clip(work / "ok.mp4", seconds=1.0, width=160, height=120, fps=4, captions=[(0, 1, "SALE")])
    good = clip.read_bytes()
    zh = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(330_000))
    # Control: a normal request in the hostile slot, so that each row's normal latency compares
    # with the same concurrency (on a loaded 2-core machine, any second request slows the first).
    control = json.dumps(normal_body(server.manifest))
    rows["control: a normal JSON request"] = lambda: raw_json(base, control)
    # Bodies are built once, before the runs: the client's own work must not be timed.
    for n in (330_000, 5_000, 10_000, 20_000, 40_000):
        body = json.dumps({"text": {"ocr": zh[:n]}}, ensure_ascii=False).encode()
        rows[f"json {n // 1000}k CJK characters, no spaces"] = lambda b=body: raw_json(base, b)
    rows["6 clients trickling an upload, 1 byte / 5 s"] = lambda: trickle(server.port, 6, 5.0, good, base)
    for depth in (5_000, 100_000):
        rows[f"json nested {depth} levels"] = lambda d=depth: raw_json(
            base, '{"features": {"frames": ' + "[" * d + "]" * d + "}}"
        )
    nul = (b'--b\r\nContent-Disposition: form-data; name="video"; filename="ad\x00one.mp4"\r\n\r\n'
           + good + b"\r\n--b--\r\n")  # fmt: skip
    rows["upload named with a NUL byte"] = lambda: post(
        base, content=nul, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    ten_mb = json.dumps({"text": {"ocr": "SALE " * 2_000_000}}).encode()
    rows["json with 10 MB of text"] = lambda: raw_json(base, ten_mb)
    # The existing bad inputs.
    cut = truncate(clip, work / "cut.mp4", 0.4).read_bytes()
    rows["upload: empty file"] = lambda: post(base, files={"video": ("e.mp4", b"", "video/mp4")})
    rows["upload: text named .mp4"] = lambda: post(
        base, files={"video": ("t.mp4", b"not a video\n" * 100, "video/mp4")}
    )
    rows["upload: truncated mp4"] = lambda: post(base, files={"video": ("c.mp4", cut, "video/mp4")})
    big = b"\0" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 1)
    rows["upload: over the size limit"] = lambda: post(base, files={"video": ("h.mp4", big, "video/mp4")})
    rows["json: not JSON"] = lambda: raw_json(base, "{not json")
    rows["json: NaN in a vector"] = lambda: raw_json(base, '{"features": {"ocr_emb": [NaN' + ", 0.0" * 383 + "]}}")
    rows["text/plain body"] = lambda: post(base, content=b"hello", headers={"content-type": "text/plain"})
    return rows


def memory_run(
    model_dir: Path,
    work: Path,
    label: str,
    n: int,
    minutes: float,
    env: dict[str, str],
    clip: tuple[float, int, int],
    files: list[Path] | None = None,
) -> dict[str, Any]:
    """Uploads of short clips (or of ``files`` in turn), two at a time (one per extraction worker);
    RSS every 10 uploads."""
    tmp = work / f"tmp-{label}"
    tmp.mkdir()
    server = Server(model_dir, tmp, work / f"server-{label}.log", env)
    clips = [f.read_bytes() for f in files] if files else [
        make_clip(
            work / f"m{i}.mp4", seconds=clip[0], width=clip[1], height=clip[2], fps=10, captions=[(0, clip[0], w)]
        ).read_bytes()
        for i, w in enumerate(["SALE", "GAME", "FOOD", "CAR"])
    ]  # fmt: skip
    trace: list[tuple[int, float]] = []
    done = 0
    t0 = time.monotonic()
    cpu0 = cpu_s(server.proc.pid)
    try:
        with httpx.Client(base_url=server.base, timeout=120) as c:
            lock = threading.Lock()
            errors: list[int] = []

            def one(i: int) -> None:
                upload = (f"m{i}.mp4", clips[i % len(clips)], "video/mp4")
                r = c.post("/v1/tag", files={"video": upload}, data={"top_k": "3"})
                if r.status_code != 200:
                    with lock:
                        errors.append(r.status_code)

            while done < n and time.monotonic() - t0 < 60 * minutes:
                pair = [threading.Thread(target=one, args=(done + k,)) for k in range(2)]
                for t in pair:
                    t.start()
                for t in pair:
                    t.join()
                done += 2
                if done % 10 == 0:
                    trace.append((done, round(rss_mib(server.proc.pid), 1)))
        wall = time.monotonic() - t0
        cpu = cpu_s(server.proc.pid) - cpu0
    finally:
        server.stop()
    at50 = next((r for k, r in trace if k >= 50), None)
    last = trace[-1][1] if trace else None
    return {
        "malloc": label,
        "clip": ", ".join(f.name for f in files)
        if files
        else f"{clip[0]:g} s {clip[1]}x{clip[2]} 10 fps, {len(clips[0]) // 1024} KiB",
        "uploads": done,
        "wall_s": round(wall, 1),
        "server_cpu_s": round(cpu, 1),
        "errors": errors,
        "rss_mib_trace": trace,
        "rss_mib_after_50": at50,
        "rss_mib_at_end": last,
        "growth_after_50_pct": round(100 * (last / at50 - 1), 1) if at50 and last else None,
    }


def data_layer(work: Path) -> dict[str, Any]:
    from numpy.lib import format as npy

    from tests.conftest import make_manifest

    out = {}
    for name in ("huge header 409600 x 1280", "text file named .npy"):
        root = work / name.replace(" ", "_")
        manifest = make_manifest(root, n=20)
        target = root / "f" / "s1.npy"
        if name.startswith("huge"):
            with open(target, "wb") as fh:
                npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (409600, 1280)})
                fh.truncate(409600 * 1280 * 4 + 128)
        else:
            target.write_text("frame,0.1,0.2\n" * 40)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "adtag.cli", "train", str(manifest), "--out", str(root / "model"), "--quiet"]
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak = 0.0
        while p.poll() is None:  # the child's peak RSS (VmHWM), read until it exits
            try:
                hwm = [x for x in Path(f"/proc/{p.pid}/status").read_text().splitlines() if x.startswith("VmHWM:")]
                peak = max(peak, int(hwm[0].split()[1]) / 1024) if hwm else peak
            except (OSError, IndexError):
                pass
            time.sleep(0.05)
        err = p.stderr.read().strip() if p.stderr else ""
        out[name] = {"exit": p.returncode, "seconds": round(time.perf_counter() - t0, 2),
                     "message": err.splitlines()[-1][-240:] if err else "", "peak_rss_mib": round(peak, 1)}  # fmt: skip
    return out


def kill_during_upload(model_dir: Path, work: Path) -> dict[str, Any]:
    tmp = work / "tmp-kill"
    tmp.mkdir()
    server = Server(model_dir, tmp, work / "server-kill.log")
    head = (b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 3000000\r\n\r\n"
            b'--b\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n')  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(head + b"\0" * 2_000_000)
        time.sleep(1.0)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    again = Server(model_dir, tmp, work / "server-kill.log")
    after = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    folders = sorted(p.name for p in tmp.iterdir())
    again.stop()
    return {"left_by_kill": left, "files_after_restart": after, "folders_after_restart": len(folders)}


def hostile_inputs(
    result: dict[str, Any], manifest: Path, model_dir: Path, work: Path, reference: int, seconds: float
) -> None:
    tmp = work / "tmp"
    tmp.mkdir()
    server = Server(model_dir, tmp, work / "server.log")
    server.manifest = manifest
    result["server"] = " ".join(server.cmd[2:]).replace(str(work), "$WORK")
    body = normal_body(manifest)
    try:
        normal_latencies(server.base, body, 10)  # warm-up
        ref = normal_latencies(server.base, body, reference)
        result["reference_normal"] = {"n": len(ref), "p50_ms": pct(ref, 0.5), "p99_ms": pct(ref, 0.99)}
        rows = {}
        for name, fn in hostile_rows(server, work).items():
            slow = name.startswith(("6 clients", "upload named"))
            rows[name] = during(server.base, body, fn, 0 if slow else seconds)
            print(f"{name}: {json.dumps(rows[name])}", flush=True)
        result["rows"] = rows
        result["health_after"] = httpx.get(server.base + "/healthz", timeout=10).json()
        result["server_alive"] = server.proc.poll() is None
        result["server_cpu_s"] = round(cpu_s(server.proc.pid), 1)
        result["tracebacks_in_log"] = (work / "server.log").read_text().count("Traceback")
    finally:
        server.stop()
    result["data_layer"] = data_layer(work)
    print(json.dumps(result["data_layer"]), flush=True)
    result["kill_9_during_upload"] = kill_during_upload(model_dir, work)
    print(json.dumps(result["kill_9_during_upload"]), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=500, help="uploads for the memory plateau (default: 500)")
    ap.add_argument("--upload-minutes", type=float, default=8, help="time cap per memory run (default: 8)")
    ap.add_argument("--reference", type=int, default=60, help="normal requests for the reference latency")
    ap.add_argument("--seconds", type=float, default=6, help="each quick hostile input is repeated this long")
    ap.add_argument("--clip", default="2x320x240", help="memory-run clips: SECONDSxWIDTHxHEIGHT (default: 2x320x240)")
    ap.add_argument("--part", choices=["inputs", "memory", "all"], default="all", help="what to run (default: all)")
    ap.add_argument("--clip-files", help="memory runs upload these videos in turn (comma-separated) instead of --clip")
    ap.add_argument(
        "--shipped-only", action="store_true", help="memory: only the allocator as shipped (skip glibc's default)"
    )
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/hostile_<part>.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    manifest, model_dir = build_video_model(work / "model")
    if args.part in ("inputs", "all"):
        hostile_inputs(result, manifest, model_dir, work, args.reference, args.seconds)
    if args.part in ("memory", "all"):
        sec, w, h = args.clip.split("x")
        clip = (float(sec), int(w), int(h))
        files = [Path(f) for f in args.clip_files.split(",")] if args.clip_files else None
        shipped = "adtag (2 arenas + malloc_trim)"
        result["memory"] = [memory_run(model_dir, work, shipped, args.uploads, args.upload_minutes, ENV, clip, files)]
        if not args.shipped_only:
            default_env = {**ENV, "ADTAG_MALLOC": "default"}
            result["memory"].append(
                memory_run(
                    model_dir, work, "glibc default", args.uploads, args.upload_minutes, default_env, clip, files
                )
            )
        print(json.dumps(result["memory"]), flush=True)
    result["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    out = args.out or ROOT / "benchmarks" / "results" / f"hostile_{args.part}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
