"""The local engine: independent jobs (branches, outer folds) in this process and worker processes, one thread each."""

from __future__ import annotations

import io
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp


def _call(fn: Callable, args: tuple) -> Any:
    from adtag import runtime

    runtime.configure(1)
    _keep_heap()
    return fn(*args)


JOBS = 2  # processes that fit branches and ablation rows by default (this one and a worker)
ALIGNED_BYTES = 1 << 20  # arrays above this size travel to a job page-aligned, as joblib's memory maps were


def _aligned(data: bytes, dtype: str, shape: tuple, fortran: bool) -> np.ndarray:
    """An array at a page boundary: BLAS kernels' last bits depend on where an array starts (a Table 2
    stacker row's GAP moved in the 4th decimal from run to run without this; BENCHMARKS 12s)."""
    raw = np.empty(len(data) + 4096, np.uint8)
    start = -raw.ctypes.data % 4096
    raw[start : start + len(data)] = np.frombuffer(data, np.uint8)
    flat = raw[start : start + len(data)].view(dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


class _JobPickler(pickle.Pickler):
    """Pickles a job's arguments with its large arrays rebuilt page-aligned (``_aligned``)."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray and obj.nbytes > ALIGNED_BYTES and not obj.dtype.hasobject:
            fortran = obj.flags.f_contiguous and not obj.flags.c_contiguous
            return _aligned, (obj.tobytes(order="F" if fortran else "C"), obj.dtype.str, obj.shape, fortran)
        return NotImplemented


def _dumps(args: tuple) -> bytes:
    buf = io.BytesIO()
    _JobPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(args)
    return buf.getvalue()


def _call_sent(fn: bytes, args: bytes) -> Any:
    """One job in a worker process: ``fn`` pickled by cloudpickle (by value where it must: a function of a
    script or a closure; by reference otherwise), ``args`` by ``_JobPickler``."""
    import cloudpickle

    _quick_exit()
    return _call(cloudpickle.loads(fn), pickle.loads(args))


@cache
def _quick_exit() -> None:
    """Once per worker process: when the pool lets it go, it ends without tearing down the interpreter
    (freeing torch's and every module's objects one by one: ~0.5 CPU-s). Its jobs' results have been
    sent by then, and multiprocessing has run its own exit hooks."""
    import atexit

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        os._exit(0)

    atexit.register(leave)


@cache
def _keep_heap() -> None:
    """Once per process that runs jobs: glibc maps every array above 32 MB afresh and unmaps it when freed,
    so each temporary of a text branch's solver (one per weight vector: 28-100 MB) is paid again in page
    faults (20% of a solve's CPU, BENCHMARKS.md 12h). That process keeps its freed memory instead."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: arrays up to 1 GiB come from the heap
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD: freed heap memory stays for the next job
    except (OSError, AttributeError):  # not glibc: the default allocation
        pass


@contextmanager
def _one_thread() -> Iterator[None]:
    """A job in this process runs as in a worker, on one thread (BLAS and torch, torch imported inside it
    too); the process's own thread settings come back after it."""
    from threadpoolctl import threadpool_limits

    from adtag import runtime

    saved = {v: os.environ.get(v) for v in runtime._THREAD_VARS}
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    os.environ.update(dict.fromkeys(saved, "1"))
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value
        torch = sys.modules.get("torch")
        threads = old or int(saved["OMP_NUM_THREADS"] or 0)
        if torch is not None and threads:
            torch.set_num_threads(threads)


_POOL: ProcessPoolExecutor | None = None


def _workers(n: int) -> ProcessPoolExecutor:
    """``n`` worker processes (started fresh: ``spawn``, safe after torch has run), kept for the next map:
    they import torch and the models once per command, not once per map."""
    global _POOL
    if _POOL is None or _POOL._max_workers < n or getattr(_POOL, "_broken", False):
        if _POOL is not None:
            _POOL.shutdown(wait=False, cancel_futures=True)
        import multiprocessing

        _POOL = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
    return _POOL


def prestart(n_jobs: int, module: str) -> None:
    """Start the workers of a coming ``run_parallel(..., n_jobs)`` now, importing ``module``: their start and
    imports (~2.6 CPU-s each) then run beside this process's own imports and input reading instead of
    delaying the first jobs while a core idles (``adtag ablate``: ~2 s of wall time)."""
    n = min(n_jobs, os.cpu_count() or 1) - 1
    if n >= 1:
        import importlib

        pool = _workers(n)
        for _ in range(n):  # set up as for a job (one thread), then the imports its jobs need
            pool.submit(_call, importlib.import_module, (module,))


def job_size(args: tuple | list) -> int:
    """A job's input size: stored numbers of its arrays (non-zeros of a sparse matrix), in lists too."""
    return sum(
        a.nnz if sp.issparse(a) else a.size if isinstance(a, np.ndarray) else job_size(a)
        for a in args
        if sp.issparse(a) or isinstance(a, (np.ndarray, list, tuple))
    )


def run_parallel(fn: Callable, jobs: Sequence[tuple], n_jobs: int = 2) -> Iterator[Any]:
    """Yield ``fn(*args)`` for each job in order; ``n_jobs <= 1`` (or one job) stays in-process.

    ``n_jobs`` processes run the jobs: this one and ``n_jobs - 1`` workers (this process would
    otherwise only wait; a worker costs a start, its imports and the pickling of its jobs).
    Jobs start largest input first (the joint early-fusion branch before the single-modality
    ones), each on whichever process is free, so the longest job does not run alone at the end
    while the others idle; results are still yielded in input order, each as soon as it and all
    before it are done (a worker's result waits for this process's job in hand).
    """
    n_jobs = max(1, min(n_jobs, len(jobs), os.cpu_count() or 1))
    if n_jobs == 1:
        yield from (fn(*args) for args in jobs)
        return
    import cloudpickle

    pool, payload = _workers(n_jobs - 1), cloudpickle.dumps(fn)
    pending = deque(sorted(range(len(jobs)), key=lambda j: -job_size(jobs[j])))
    futures: dict[int, Future] = {}
    here: dict[int, Any] = {}
    lock = threading.RLock()  # a done callback may run at once, in the thread that adds it
    stop = False

    def start_next(_: Future | None = None) -> None:  # a worker is free: its next job, the largest left
        with lock:
            if pending and not stop:
                j = pending.popleft()
                try:
                    futures[j] = pool.submit(_call_sent, payload, _dumps(jobs[j]))
                except Exception as exc:  # a broken pool (a worker died): raised when job j's turn comes
                    futures[j] = Future()
                    futures[j].set_exception(exc)
                    return
                futures[j].add_done_callback(start_next)

    try:
        for _ in range(n_jobs - 1):
            start_next()
        nxt = 0
        while nxt < len(jobs):
            while nxt < len(jobs) and (nxt in here or (nxt in futures and futures[nxt].done())):
                yield here.pop(nxt) if nxt in here else futures.pop(nxt).result()
                nxt += 1
            if nxt == len(jobs):
                break
            with lock:
                j = pending.popleft() if pending else None
            if j is None:  # all started: wait for the next one in order
                yield futures.pop(nxt).result()
                nxt += 1
                continue
            with _one_thread():
                _keep_heap()
                here[j] = fn(*pickle.loads(_dumps(jobs[j])))  # as a worker gets them: large arrays aligned
    finally:
        with lock:
            stop = True
        for f in futures.values():
            f.cancel()
