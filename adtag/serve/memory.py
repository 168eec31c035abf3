"""glibc allocator settings that keep a long-running server's memory flat.

Each thread that allocates gets its own malloc arena (up to 8 per core), and freed memory inside
an arena is kept by the process rather than returned; decoding a video frees tens of MB of frames
at a time, so a server's RSS creeps up upload after upload. Fewer arenas and a ``malloc_trim``
after each upload return that memory (see BENCHMARKS.md, hostile inputs). No-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            lib.malloc_trim  # noqa: B018 - only glibc has it
            _libc = lib
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def limit_arenas(n: int | None = None) -> None:
    """At most ``n`` malloc arenas (default $MALLOC_ARENA_MAX, else 2); call before threads start."""
    lib = _glibc()
    if lib is None or os.environ.get("ADTAG_MALLOC") == "default":
        return
    n = n or int(os.environ.get("MALLOC_ARENA_MAX", "2"))
    lib.mallopt(M_ARENA_MAX, n)


def trim() -> None:
    """Give freed heap memory back to the system."""
    lib = _glibc()
    if lib is not None and os.environ.get("ADTAG_MALLOC") != "default":
        lib.malloc_trim(0)
