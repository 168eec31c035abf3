"""adtag train: fit branches K-fold, then the stacker (or a fusion baseline); save MODEL_DIR."""

from __future__ import annotations

import argparse
from pathlib import Path

from adtag.commands._common import add_data_options, load_training_data, setup
from adtag.decisions.cli import add_decide_options, check_training_options, fit_for_training  # numpy only
from adtag.models.fusions import FUSIONS  # the registry alone: numpy, no torch or scikit-learn

# The rest of the model layer is imported by run(): torch and scikit-learn take seconds to load,
# and 'adtag --help' must not wait for them.


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a tagger on a labelled manifest or TAAC-2021 layout",
        description=(
            "Train one branch model per modality with K-fold cross-validation; their out-of-fold tag "
            "probabilities (meta-features) train the stacker. MODEL_DIR receives config.json (all "
            "settings, versions, metrics), weights.safetensors and the cached meta-features: re-running "
            "with the same data and branch settings (e.g. another --fusion) reuses the branches."
        ),
    )
    p.add_argument("manifest", type=Path, help="manifest.jsonl, a TAAC datafile / tagging_info.txt, or a TAAC folder")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (replaced atomically)")
    p.add_argument(
        "--fusion",
        choices=list(FUSIONS),
        default="stack",
        help="; ".join(f"{f.name}: {f.description}" for f in FUSIONS.values()) + " (default: stack)",
    )
    p.add_argument("--folds", type=int, default=5, help="K for the out-of-fold meta-features (default: 5)")
    p.add_argument("--no-joint", action="store_true", help="leave out the early-fusion branch over all modalities")
    add_data_options(p)
    add_decide_options(p, "train")
    from adtag.engines import add_engine_options

    add_engine_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    setup(args)
    check_training_options(args)  # a --decide that cannot work fails before any training
    from adtag.features.store import manifest_encoders
    from adtag.models.tagger import Tagger, TrainConfig

    items, vocab = load_training_data(args)
    cfg = TrainConfig(
        fusion=args.fusion,
        folds=args.folds,
        seed=args.seed,
        modalities=args.modalities,
        joint=not args.no_joint,
        encoders=manifest_encoders(args.manifest) if args.manifest.is_file() else None,
    )
    print(f"training on {len(items)} items from {args.manifest} (fusion={cfg.fusion}, folds={cfg.folds})")
    from adtag.engines import branch_executor

    with branch_executor(args) as map_fn:  # --engine ray: one Ray task per branch
        cache = args.out if args.out.is_dir() else None
        tagger = Tagger(cfg).fit(items, vocab, cache_dir=cache, progress=not args.quiet, map_fn=map_fn)
    tagger.save(args.out)
    fit_for_training(args, tagger, items, args.out)
    print(f"saved {args.out} ({tagger.metrics_['train_seconds']} s)")
    return 0
