"""Process-wide settings: explicit thread counts, offline defaults, telemetry off."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# How long an idle OpenMP thread spins before it sleeps (libgomp's default: 300,000; 0 with OMP_WAIT_POLICY=PASSIVE).
# Sleeping at once made 2 threads barely faster than one on the stacker's small ops (41.9 vs 46.5 s); a short
# spin gets most of the second core (29.1 s), as spinning for ever does (28.8 s) (BENCHMARKS.md 12r).
SPIN = 20_000


def configure(threads: int | None = None) -> int:
    """Fix thread counts so that parallel workers do not fight over the cores.

    Call before heavy imports where possible; safe to call again. Returns the count used.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads is None:
        # One thread by default: the engine's networks are small, where extra threads only spin
        # (measured: 7x slower training with 2 threads on a busy 2-core machine).
        threads = int(os.environ.get("ADTAG_THREADS", 0)) or 1
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if "torch" not in sys.modules:  # read once, when torch loads its OpenMP (libgomp): how an idle thread waits
        if threads > 1:  # threads asked for, busy machine or not: they sleep at once instead of spinning
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        else:  # one thread, more only on idle cores (``threads`` below): spin briefly, then sleep
            os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN))
    # The variables only reach libraries not yet loaded; BLAS pools already running (numpy's
    # OpenBLAS) must be limited at run time, or each vector dot waits on a contended thread.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    # torch reads OMP_NUM_THREADS when it is imported; only one already loaded needs telling.
    # Importing it here would cost ~1 CPU-s and ~190 MiB in processes that never use it (extract).
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


def free_cores(window: float = 0.2) -> float:
    """How many cores sat idle over the next ``window`` seconds (0.0 where /proc/stat cannot tell)."""
    import time

    def idle_total() -> tuple[int, int, int]:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
        ticks = [int(v) for v in lines[0].split()[1:]]  # all cores: user nice system idle iowait irq softirq steal
        return ticks[3] + ticks[4], sum(ticks[:8]), sum(line.startswith("cpu") for line in lines) - 1

    try:
        idle0, total0, _ = idle_total()
        time.sleep(window)
        idle1, total1, cores = idle_total()
    except (OSError, ValueError, IndexError):
        return 0.0
    return cores * (idle1 - idle0) / max(total1 - total0, 1)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Up to ``n`` torch threads inside (restored after), as many as cores are idle when it starts: for work
    alone in its process while the cores should be free (the stacker after the branch workers). A thread
    waiting on a busy core spins for nothing, so a busy machine keeps one thread: spinning threads ran 4.7x
    slower there, and a short spin (``SPIN``) still burnt 4x the CPU (BENCHMARKS.md 12j, 12r). Threads that
    never sleep (``OMP_WAIT_POLICY=ACTIVE``) keep one thread too."""
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else 0
    if torch is not None and n > old and os.environ.get("OMP_WAIT_POLICY", "").upper() != "ACTIVE":
        torch.set_num_threads(max(old, min(n, int(free_cores() + 0.5))))
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)
