"""Fit independent branches in worker processes, one thread each, results in input order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def _call(fn: Callable, args: tuple) -> Any:
    from adtag import runtime

    runtime.configure(1)
    return fn(*args)


def run_parallel(fn: Callable, jobs: Sequence[tuple], n_jobs: int = 2) -> Iterator[Any]:
    """Yield ``fn(*args)`` for each job in order; ``n_jobs <= 1`` (or one job) stays in-process."""
    n_jobs = max(1, min(n_jobs, len(jobs), os.cpu_count() or 1))
    if n_jobs == 1:
        for args in jobs:
            yield fn(*args)
        return
    from joblib import Parallel, delayed

    # Biggest jobs first would balance better, but order keeps the progress bar honest.
    yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")(delayed(_call)(fn, a) for a in jobs)
