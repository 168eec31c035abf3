"""The Ray executor for the K-fold seam: ``ray_map(fn, jobs)`` yields ``fn(*job)`` per job, in order.

Every job is a Ray task (one CPU, one thread, as the local worker processes). An argument shared by
several jobs (the labels, the folds, a modality's feature matrix) is put in the object store once
and passed by reference, so it crosses the network once per node, not once per task; numbers and
strings travel inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from adtag.engines.local import job_size

_INLINE = (int, float, str, bool, bytes, type(None))


def _call(fn: Callable, threads: int, *args: Any) -> Any:
    from adtag import runtime

    runtime.configure(threads)
    return fn(*args)


def ray_map(fn: Callable, jobs: Sequence[tuple], threads: int = 1, retries: int = 1) -> Iterator[Any]:
    """Run ``fn(*job)`` for every job as a Ray task on the connected cluster; yield results in job order.

    A task whose worker dies is retried ``retries`` times by Ray. Stopping the iteration (an error,
    Ctrl-C) cancels the tasks not yet finished.
    """
    import ray

    refs: dict[int, tuple[Any, Any]] = {}  # id(arg) -> (ref, arg); holding arg keeps its id unique

    def by_ref(arg: Any) -> Any:
        if isinstance(arg, _INLINE):
            return arg
        if id(arg) not in refs:
            refs[id(arg)] = (ray.put(arg), arg)
        return refs[id(arg)][0]

    task = ray.remote(num_cpus=threads, max_retries=retries)(_call)
    # Submitted largest input first, as the local engine does, so the joint early-fusion branch's
    # folds do not run alone at the end while the other CPUs idle; yielded in job order.
    pending: list[Any] = [None] * len(jobs)
    for j in sorted(range(len(jobs)), key=lambda j: -job_size(jobs[j])):
        pending[j] = task.remote(fn, threads, *(by_ref(a) for a in jobs[j]))
    try:
        for i, ref in enumerate(pending):
            yield ray.get(ref)
            pending[i] = None
    finally:
        for ref in pending:
            if ref is not None:
                ray.cancel(ref, force=True)
