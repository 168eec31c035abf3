"""A bounded thread pool: a fixed number of workers and a fixed queue; beyond that, 503 at once.

A request reserves a slot before its body is read, so an overloaded server refuses a 200 MB upload
before receiving it. The slot is released when the work finishes, even if the client went away.
A task still waiting in the queue when its client leaves, or when its deadline passes, never runs;
a running task cannot be stopped (threads cannot be killed), which is why every input is capped in
size so that no task runs long.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from adtag.serve.errors import ApiError

T = TypeVar("T")


class BoundedPool:
    def __init__(self, name: str, workers: int, queue: int, initializer: Callable[[], None] | None = None) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"adtag-{name}", initializer=initializer)
        self._held = 0
        self._lock = threading.Lock()
        self._mean_s = 1.0  # running mean of task seconds, for Retry-After
        self._running: dict[int, float] = {}  # task id -> start time (monotonic)
        self._next = 0

    @property
    def held(self) -> int:
        return self._held

    @property
    def full(self) -> bool:
        return self._held >= self.capacity

    def longest_running(self) -> float:
        """Seconds the oldest running task has been running (0 when idle)."""
        starts = list(self._running.values())
        return time.monotonic() - min(starts) if starts else 0.0

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * self.capacity / self.workers))

    def _refuse(self) -> ApiError:
        wait = self.retry_after()
        return ApiError(
            503,
            f"{self.name} pool is full ({self.workers} running, {self.capacity - self.workers} queued); "
            f"retry in {wait} s",
            {"Retry-After": str(wait)},
        )

    def refuse_if_full(self) -> None:
        """503 now if no slot is free (before reading a body that would only be refused later)."""
        if self.full:
            raise self._refuse()

    def reserve(self) -> Slot:
        with self._lock:
            if self._held >= self.capacity:
                raise self._refuse()
            self._held += 1
        return Slot(self)

    def _release(self, seconds: float | None = None) -> None:
        with self._lock:
            self._held -= 1
            if seconds is not None:
                self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    def _started(self) -> int:
        with self._lock:
            self._next += 1
            self._running[self._next] = time.monotonic()
            return self._next

    def _finished(self, key: int) -> None:
        with self._lock:
            self._running.pop(key, None)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class Slot:
    """One admitted request: ``run`` once on the pool, or release on exit if never run."""

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool
        self._submitted = False

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        deadline: float | None = None,
        gone: Callable[[], Awaitable[Any]] | None = None,
    ) -> tuple[T, float]:
        """Run ``fn`` on a worker; returns its result and the seconds it waited in the queue.

        ``deadline``: seconds after which the caller gets 503 (the task is dropped if still queued).
        ``gone``: an awaitable factory that returns when the client disconnects; the task is then
        dropped if still queued, and the answer no longer matters.
        """
        queued = time.perf_counter()
        started: list[float] = []

        def timed() -> T:
            started.append(time.perf_counter())
            key = self.pool._started()
            try:
                return fn(*args)
            finally:
                self.pool._finished(key)

        future = self.pool.executor.submit(timed)
        self._submitted = True
        future.add_done_callback(lambda _: self.pool._release(time.perf_counter() - started[0] if started else None))
        work = asyncio.wrap_future(future)
        watcher = asyncio.ensure_future(gone()) if gone is not None else None
        try:
            waits = {work} if watcher is None else {work, watcher}
            done, _ = await asyncio.wait(waits, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watcher is not None:
                watcher.cancel()
        if work not in done:
            future.cancel()  # only succeeds while still queued; a running task finishes on its own
            work.cancel()
            if watcher is not None and watcher in done:
                raise ApiError(499, "client closed the request")
            wait = self.pool.retry_after()
            raise ApiError(
                503,
                f"{self.name_for_message()} took longer than {deadline:g} s; retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        return work.result(), started[0] - queued

    def name_for_message(self) -> str:
        return f"the {self.pool.name} step"

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._submitted:
            self._submitted = True
            self.pool._release()
