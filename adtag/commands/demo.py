"""adtag demo: generate the built-in ad corpus and run the whole pipeline on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from adtag.commands._common import add_progress, add_threads, setup
from adtag.errors import AdtagError

DEMO_MISSING = (
    "the demo corpus generator is a separate package: install it from the adtag repository with "
    "'pip install -e ./demo' (the README's first command does), then run 'adtag demo' again"
)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="run the whole system on a generated ad corpus and write report.html",
        description=(
            "Generate short ad-like videos with tags from a bilingual taxonomy (captions, scenes, music, "
            "speech), extract every modality, train the stacker on 80% of them, predict and evaluate the "
            "held-out 20%, run the ablation (the paper's three tables) and write DIR/report.html. A second "
            "run in the same DIR reuses the clips, the extracted features and the branch models. Needs the "
            "adtag-demo package (pip install -e ./demo)."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("adtag-demo"), help="working folder (default: ./adtag-demo)")
    p.add_argument("--videos", type=int, default=150, help="clips to generate (default: 150)")
    p.add_argument(
        "--workers", type=int, default=2, help="parallel processes for generation and extraction (default: 2)"
    )
    p.add_argument("--folds", type=int, default=5, help="K for the meta-features (default: 5)")
    p.add_argument("--ablation-folds", type=int, default=5, help="outer folds of the ablation (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_progress(p)
    add_threads(p)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from adtag_demo.run import run_demo
    except ModuleNotFoundError as exc:
        if exc.name != "adtag_demo":
            raise
        raise AdtagError(DEMO_MISSING) from None

    setup(args)
    run_demo(
        args.out,
        n_videos=args.videos,
        seed=args.seed,
        workers=args.workers,
        folds=args.folds,
        ablation_folds=args.ablation_folds,
        progress=not args.quiet,
    )
    return 0
