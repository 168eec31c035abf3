"""A bounded thread pool: a fixed number of workers and a fixed queue; beyond that, 503 at once.

A request reserves a slot before its body is read, so an overloaded server refuses a 200 MB upload
before receiving it. The slot is released when the work finishes, even if the client went away.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
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

    @property
    def held(self) -> int:
        return self._held

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * self.capacity / self.workers))

    def reserve(self) -> Slot:
        with self._lock:
            if self._held >= self.capacity:
                wait = self.retry_after()
                raise ApiError(
                    503,
                    f"{self.name} pool is full ({self.workers} running, {self.capacity - self.workers} queued); "
                    f"retry in {wait} s",
                    {"Retry-After": str(wait)},
                )
            self._held += 1
        return Slot(self)

    def _release(self, seconds: float | None = None) -> None:
        with self._lock:
            self._held -= 1
            if seconds is not None:
                self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class Slot:
    """One admitted request: ``run`` once on the pool, or release on exit if never run."""

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool
        self._submitted = False

    async def run(self, fn: Callable[..., T], *args: Any) -> tuple[T, float]:
        """Run ``fn`` on a worker; returns its result and the seconds it waited in the queue."""
        queued = time.perf_counter()
        started: list[float] = []

        def timed() -> T:
            started.append(time.perf_counter())
            return fn(*args)

        future = self.pool.executor.submit(timed)
        self._submitted = True
        future.add_done_callback(lambda _: self.pool._release(time.perf_counter() - started[0] if started else None))
        result = await asyncio.wrap_future(future)
        return result, started[0] - queued

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._submitted:
            self._submitted = True
            self.pool._release()
