"""Joining a Ray cluster for one command, and leaving it however the command ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from adtag.engines import require_ray
from adtag.errors import AdtagError

# Every worker process inherits these: one explicit thread count per task, nothing phones home.
WORKER_ENV = {"ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@contextmanager
def ray_session(address: str | None = None) -> Iterator[object]:
    """Connect to the cluster at ``address`` (None: $RAY_ADDRESS, a running local one, else a new one).

    Yields the ``ray`` module. On exit (normal, error or Ctrl-C) the driver disconnects; the actors
    and tasks it owns are then stopped by Ray, and the cluster itself keeps running.
    """
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started_here = ray.is_initialized()
    if not started_here:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AdtagError(f"cannot join the Ray cluster at {address or 'auto'}: {exc}") from None
    try:
        yield ray
    finally:
        if not started_here:
            ray.shutdown()


def cluster_cpus(ray) -> int:
    """CPUs the cluster has now (alive nodes only)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
