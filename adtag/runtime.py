"""Process-wide settings: explicit thread counts, offline defaults, telemetry off."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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
    if "torch" not in sys.modules:  # read once, when torch loads its OpenMP: threads without work sleep
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # instead of spinning (see threads below)
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


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Up to ``n`` torch threads inside (restored after): for work alone in its process while the cores
    are free (the stacker after the branch workers). Only where idle OpenMP threads sleep (the passive
    wait policy, set by ``configure`` before torch loads): spinning ones ran 4.7x slower on a busy machine."""
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else 0
    if torch is not None and os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        torch.set_num_threads(max(n, old))
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)
