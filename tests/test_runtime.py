"""Process-wide thread settings: more torch threads only for a while, only on cores that are idle, and
only where idle threads do not spin for ever."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from adtag import runtime


def test_threads_raises_torch_threads_on_idle_cores_and_restores_them(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(runtime, "free_cores", lambda: 1.9)  # both cores idle (the caller sleeping)
    with runtime.threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(runtime, "free_cores", lambda: 1.1)  # another process holds a core: one thread
    with runtime.threads(2):
        assert torch.get_num_threads() == 1
    monkeypatch.setattr(runtime, "free_cores", lambda: 2.0)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # threads that never sleep: the one thread stays
    with runtime.threads(2):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 1


def test_free_cores_sees_a_busy_core():
    if not os.path.exists("/proc/stat"):
        assert runtime.free_cores() == 0.0
        return
    cores = sum(line.startswith("cpu") for line in open("/proc/stat").read().splitlines()) - 1
    idle = runtime.free_cores(0.3)
    assert 0.0 <= idle <= cores + 1e-9
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 3\nwhile time.time() < t: pass"])
    try:
        loaded = runtime.free_cores(0.5)  # one core spinning in the child: at most cores - 1 idle (and noise)
    finally:
        busy.kill()
        busy.wait()
    assert loaded <= cores - 0.6


def test_configure_spins_briefly_for_one_thread_and_sleeps_for_more_before_torch_loads(monkeypatch):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    runtime.configure(1)  # torch is loaded in this process: too late to tell its OpenMP
    assert "GOMP_SPINCOUNT" not in os.environ
    show = "from adtag import runtime; import os; runtime.configure({}); print(os.environ.get('{}'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    for threads, var, value in ((1, "GOMP_SPINCOUNT", str(runtime.SPIN)), (2, "OMP_WAIT_POLICY", "PASSIVE")):
        cmd = [sys.executable, "-c", show.format(threads, var)]
        assert subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip() == value
