"""adtag ablate: the paper's three tables (single, combinations, fusions) on any labelled manifest."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from adtag.commands._common import add_data_options, load_training_data, setup
from adtag.data.taxonomy import Taxonomy
from adtag.decisions.cli import checked_type
from adtag.models.fusions import FUSIONS  # the registry alone: numpy, no torch or scikit-learn


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ablate",
        help="reproduce the paper's tables with an outer cross-validation",
        description=(
            "Outer K-fold cross-validation over MANIFEST: in each fold the branches are trained K-fold on the "
            "training part and every table row scores the held-out part: each single modality, growing "
            "combinations (best first), and every fusion strategy (stack, the paper's DNN stacker, plain "
            "averaging, best branch, early-fusion LR, concat, sum, max, attention). Writes ablation.md, "
            "ablation.json and ablation.png to --out."
        ),
    )
    p.add_argument("manifest", type=Path, help="labelled manifest.jsonl or TAAC layout")
    p.add_argument("--out", type=Path, default=Path("ablation"), help="output folder (default: ./ablation)")
    p.add_argument("--folds", type=int, default=5, help="outer folds (default: 5)")
    p.add_argument("--inner-folds", type=int, default=5, help="K for the meta-features inside each fold (default: 5)")
    p.add_argument(
        "--fusions",
        type=lambda s: tuple(x for x in s.split(",") if x),
        default=tuple(FUSIONS),
        help=f"fusion rows to run (default: {','.join(FUSIONS)})",
    )
    p.add_argument(
        "--full-stackers",
        action="store_true",
        help="fit every single, combination and paper row with the default stacker settings (slower); by default "
        "only the headline 'stack' row does, the others use cheaper settings named in ablation.md",
    )
    p.add_argument(
        "--taxonomy",
        type=checked_type(Taxonomy.from_file),
        default=None,
        help="CSV tag,group[,parent] or TAAC label_dimension.csv: adds GAP@20 and hit@1 per group (ablation_groups.md)",
    )
    add_data_options(p)
    from adtag.engines import add_engine_options

    add_engine_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    setup(args)
    if getattr(args, "engine", "local") == "local":  # its worker starts while this process imports and reads
        from adtag.engines.local import JOBS, prestart

        prestart(JOBS, "adtag.ablation")
    from adtag.ablation import run_ablation
    from adtag.ablation_report import to_markdown, write_ablation
    from adtag.models.tagger import TrainConfig

    items, vocab = load_training_data(args)
    missing = [it.id for it in items if not it.tags]
    if missing:
        from adtag.errors import AdtagError

        raise AdtagError(
            f"{args.manifest}: ablation needs tags on every item; {len(missing)} lack them, e.g. {missing[:3]}"
        )
    tags = vocab.tags if vocab else sorted({t for it in items for t in it.tags})  # run_ablation's order
    if args.taxonomy is not None:
        args.taxonomy.check_vocabulary(tags)
    cfg = replace(TrainConfig(), folds=args.inner_folds, seed=args.seed, modalities=args.modalities)
    from adtag.engines import branch_executor

    with branch_executor(args) as fold_map_fn:  # --engine ray: one Ray task per fold's branches, per row
        result = run_ablation(
            items,
            vocab,
            cfg,
            outer_folds=args.folds,
            fusions=args.fusions,
            progress=not args.quiet,
            dataset=str(args.manifest),
            fold_map_fn=fold_map_fn,
            stackers={} if args.full_stackers else None,
        )
    groups_md = ""
    if args.taxonomy is not None:
        from adtag.decisions.evaluation import add_group_tables
        from adtag.io import write_text

        groups_md = add_group_tables(result, args.taxonomy, tags)
        write_text(args.out / "ablation_groups.md", groups_md)
    paths = write_ablation(result, args.out)
    print(to_markdown(result) + groups_md)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
