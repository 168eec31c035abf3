"""Options shared by several commands."""

from __future__ import annotations

import argparse

from adtag import runtime


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for numeric work (default: $ADTAG_THREADS or 1)",
    )


def setup(args: argparse.Namespace) -> None:
    runtime.configure(getattr(args, "threads", None))
