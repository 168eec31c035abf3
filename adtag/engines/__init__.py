"""Where the work runs: ``local`` (this machine's processes, the default: ``local.py``) or ``ray`` (a Ray cluster).

The Ray engine lives in ``adtag.engines.ray_*`` modules that import Ray; nothing here does, so
the default install runs without it. Commands call ``add_engine_options`` and, for ``--engine
ray``, ``ray_session`` or ``branch_executor`` (which connect, and disconnects on the way out, Ctrl-C included).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from adtag.errors import AdtagError

ENGINES = ("local", "ray")
RAY_PIN = "ray==2.60.0"


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: processes on this machine (default); ray: a Ray cluster (pip install 'adtag[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="auto|HOST:PORT",
        help="with --engine ray: the cluster to join ('auto' finds one started on this machine with 'ray start'; "
        "default: $RAY_ADDRESS, a running local cluster, else a new one-machine cluster)",
    )


def require_ray():
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise AdtagError(f"--engine ray needs Ray: pip install 'adtag[ray]' (or {RAY_PIN})") from None
    return ray


def check_engine_args(args: argparse.Namespace) -> None:
    if getattr(args, "address", None) and getattr(args, "engine", "local") != "ray":
        raise AdtagError("--address only applies with --engine ray")


@contextmanager
def branch_executor(args: argparse.Namespace) -> Iterator[Callable | None]:
    """The ``map_fn`` for the K-fold seam that ``--engine`` asks for: None (local processes) or Ray tasks.

    For Ray, the driver stays connected for the ``with`` block and disconnects on the way out.
    """
    check_engine_args(args)
    if getattr(args, "engine", "local") != "ray":
        yield None
        return
    from adtag.engines.ray_cluster import ray_session
    from adtag.engines.ray_map import ray_map

    with ray_session(args.address):
        yield ray_map
