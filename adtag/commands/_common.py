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
    add_scores_option(p)
    add_threads(p)


def add_scores_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scores",
        action="append",
        default=None,
        metavar="NAME=PRED.json",
        help="an external model's per-tag scores, a TAAC submission JSON (repeat per model); they reach "
        "the stacker as they are, so training items' scores must be out-of-sample",
    )


def attach_scores(items: list, args: argparse.Namespace, tags: list[str]) -> None:
    """Give the items the scores of every ``--scores NAME=PRED.json`` (checked before any change)."""
    if getattr(args, "scores", None):
        from adtag.data.scores import attach_score_files

        attach_score_files(items, args.scores, tags)
