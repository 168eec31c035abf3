"""A real two-node Ray cluster on loopback, run inside its own network and PID namespaces.

``python -m tests.ray_cluster PLAN.json`` must be started under ``unshare -n -p -f --mount-proc``
(see ``run_in_namespace``): only loopback exists there, so Ray settles on 127.0.0.1 and sends no
traffic elsewhere, and every process it starts dies with the namespace; nothing is stopped by
name. The plan is a list of steps; each step's outcome goes to the JSON file given in the plan.

Steps: ``cmd`` runs an ``adtag`` command as a driver; ``kill_worker_node`` runs one and, once
the feature journal has N lines, SIGKILLs the second node's raylet and every process under it;
``kill_driver`` SIGKILLs the driver itself once the journal has N lines, ``interrupt`` sends it
SIGINT (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6390  # outside Ray's worker port range (10002-19999), where a head fails to start
HEAD = f"127.0.0.1:{PORT}"
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # a private loopback cluster; no token file written to ~/.ray
    # A lost node is noticed in seconds, not the default ~30 s.
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def run_in_namespace(plan: dict, timeout: float = 240.0) -> subprocess.CompletedProcess:
    """Run the plan under fresh network + PID namespaces (raises FileNotFoundError without unshare)."""
    repo = Path(__file__).resolve().parents[1]
    # Ray's socket paths must stay under 108 bytes: a short folder, not pytest's deep tmp_path.
    temp = tempfile.mkdtemp(prefix="adtag-ray-", dir="/tmp")
    plan_file = Path(plan["out"]).with_suffix(".plan.json")
    plan_file.write_text(json.dumps({**plan, "temp": temp}))
    inner = f"ip link set lo up && exec {sys.executable} -m tests.ray_cluster {plan_file}"
    env = {**os.environ, "PYTHONPATH": str(repo), **ENV}
    try:
        return subprocess.run(
            ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", inner],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:  # every process of the cluster died with the namespace
        shutil.rmtree(temp, ignore_errors=True)


def namespaces_available() -> str | None:
    """None when ``unshare -n -p -f --mount-proc`` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (iproute2) is not installed"
    try:
        r = subprocess.run(
            ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", "ip link set lo up && echo ok"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if r.stdout.strip() == "ok" else f"network/PID namespaces unavailable: {r.stderr.strip()[:200]}"


def _ray_start(args: list[str], temp: str) -> None:
    ray_exe = str(Path(sys.executable).with_name("ray"))
    base = [ray_exe, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    r = subprocess.run([*base, *args, "--temp-dir", temp], capture_output=True, text=True, timeout=90)
    if r.returncode:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _descendants(roots: set[int]) -> set[int]:
    out = set(roots)
    grew = True
    while grew:
        grew = False
        for pid in _pids():
            if pid not in out and _parent(pid) in out:
                out.add(pid)
                grew = True
    return out


def _journal_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _adtag(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "adtag.cli", *argv]


def _wait_journal(proc: subprocess.Popen, journal: Path, n: int, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if _journal_lines(journal) >= n:
            return True
        time.sleep(0.05)
    return False


def crash_check(out: str) -> int:
    """The actor pool on the cluster: an actor that dies on one task is replaced; that task is retried
    once and then recorded as lost, the others all succeed exactly once. Writes the outcome to ``out``."""
    import ray

    from adtag.engines.ray_pool import run_actor_pool

    class Worker:
        def ready(self) -> int:
            return os.getpid()

        def work(self, task: str) -> tuple[str, int]:
            if task == "crash":
                os._exit(1)
            return task, os.getpid()

    ray.init(address=HEAD, log_to_driver=False, logging_level="warning")
    cls = ray.remote(num_cpus=1, max_restarts=0)(Worker)
    made: list = []
    done: list = []
    lost: list = []

    def make():
        made.append(cls.remote())
        return made[-1]

    tasks = ["a", "b", "crash", "c", "d", "e"]
    run_actor_pool(
        ray,
        make,
        tasks,
        lambda a, t: a.work.remote(t),
        lambda t, v: done.append(v),
        lambda t, r: lost.append([t, r]),
        workers=2,
    )
    Path(out).write_text(json.dumps({"done": done, "lost": lost, "actors": len(made)}))
    ray.shutdown()
    return 0


def main(plan_path: str) -> int:
    # The steps' Ctrl-C must reach a Python that turns it into KeyboardInterrupt: a test run started in
    # the background of a shell (``cmd &``, nohup) inherits SIGINT ignored, every child after it too, and
    # the interrupted run then finishes (exit 1, not 130). A handler set here is reset to the default by exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plan = json.loads(Path(plan_path).read_text())
    temp = plan["temp"]
    results: dict = {"steps": []}
    _ray_start(["--head", "--port", str(PORT), "--include-dashboard=false"], temp)
    head_pids = _pids()
    _ray_start(["--address", HEAD], temp)
    worker_node = _pids() - head_pids - {os.getpid()}
    env = {**os.environ, "RAY_ADDRESS": HEAD}
    for step in plan["steps"]:
        t0 = time.monotonic()
        argv = step["python"] if "python" in step else _adtag(step["argv"])
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outcome: dict = {"name": step["name"]}
        if step.get("kill_after"):
            journal = Path(step["journal"])
            outcome["reached"] = _wait_journal(proc, journal, step["kill_after"], 120)
            outcome["journal_at_kill"] = _journal_lines(journal)
            if step["kill"] == "worker_node":
                raylets = [p for p in worker_node if "raylet" in _cmdline(p).split(" ")[0]]
                victims = _descendants(worker_node | set(raylets))
                outcome["actors_killed"] = sum("ExtractWorker" in _cmdline(p) for p in victims)
                for pid in victims:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            elif step["kill"] == "interrupt":
                proc.send_signal(signal.SIGINT)  # Ctrl-C
            else:
                proc.kill()
        try:
            out, err = proc.communicate(timeout=step.get("timeout", 180))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            outcome["timed_out"] = True
        outcome.update(code=proc.returncode, stdout=out[-4000:], stderr=err[-4000:], seconds=time.monotonic() - t0)
        results["steps"].append(outcome)
        Path(plan["out"]).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(crash_check(sys.argv[2]) if sys.argv[1] == "--crash-check" else main(sys.argv[1]))
