"""The local engine: independent jobs (branches, outer folds) in worker processes, one thread each."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp


def _call(fn: Callable, args: tuple) -> Any:
    from adtag import runtime

    runtime.configure(1)
    _keep_heap()
    return fn(*args)


@cache
def _keep_heap() -> None:
    """Once per worker process: glibc maps every array above 32 MB afresh and unmaps it when freed, so
    each temporary of a text branch's solver (one per weight vector: 28-100 MB) is paid again in page
    faults (20% of a solve's CPU, BENCHMARKS.md 12h). A worker keeps its freed memory instead."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: arrays up to 1 GiB come from the heap
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD: freed heap memory stays for the next job
    except (OSError, AttributeError):  # not glibc: the default allocation
        pass


def job_size(args: tuple | list) -> int:
    """A job's input size: stored numbers of its arrays (non-zeros of a sparse matrix), in lists too."""
    return sum(
        a.nnz if sp.issparse(a) else a.size if isinstance(a, np.ndarray) else job_size(a)
        for a in args
        if sp.issparse(a) or isinstance(a, (np.ndarray, list, tuple))
    )


def run_parallel(fn: Callable, jobs: Sequence[tuple], n_jobs: int = 2) -> Iterator[Any]:
    """Yield ``fn(*args)`` for each job in order; ``n_jobs <= 1`` (or one job) stays in-process.

    Jobs start largest input first (the joint early-fusion branch before the single-modality
    ones), so the longest job does not run alone at the end while the other workers idle;
    results are still yielded in input order, each as soon as it and all before it are done.
    """
    n_jobs = max(1, min(n_jobs, len(jobs), os.cpu_count() or 1))
    if n_jobs == 1:
        yield from (fn(*args) for args in jobs)
        return
    from joblib import Parallel, delayed

    order = sorted(range(len(jobs)), key=lambda j: -job_size(jobs[j]))
    results = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")(delayed(_call)(fn, jobs[j]) for j in order)
    done: dict[int, Any] = {}
    nxt = 0
    for j, res in zip(order, results, strict=True):
        done[j] = res
        while nxt in done:
            yield done.pop(nxt)
            nxt += 1
