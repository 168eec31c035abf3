"""Options shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def comma_list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


def add_data_options(p: argparse.ArgumentParser) -> None:
    """Options shared by train and ablate: which modalities, which tags, the seed, progress."""
    p.add_argument(
        "--modalities", type=comma_list, default=None, help="comma-separated modalities (default: all found)"
    )
    p.add_argument(
        "--vocab", type=Path, default=None, help="tag vocabulary (label_id.txt: tag<TAB>id); default: the tags seen"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(p)
