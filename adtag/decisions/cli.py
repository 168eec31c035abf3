"""The decision options shared by train, predict and evaluate, and the one call each makes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.taxonomy import Taxonomy
from adtag.decisions.decider import Decider, Rules, parse_group_counts
from adtag.decisions.thresholds import parse_goal
from adtag.errors import AdtagError


def checked_type(parse):
    """An argparse type from a parser that raises AdtagError: bad values exit 2 naming the option."""

    def convert(text: str):
        try:
            return parse(text)
        except AdtagError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _goal_text(text: str) -> str:
    if text:  # "" is predict's bare --decide: the goal the model was trained with
        parse_goal(text)
    return text


def add_decide_options(p: argparse.ArgumentParser, command: str) -> None:
    """``command`` is train (fit the layer) or predict (apply it, optionally re-choosing the goal)."""
    g = p.add_argument_group("decisions (calibrated scores, per-tag thresholds, taxonomy rules)")
    if command == "train":
        g.add_argument(
            "--decide",
            metavar="GOAL",
            type=checked_type(_goal_text),
            default=None,
            help="also fit calibration and per-tag thresholds on the whole system's out-of-fold scores, for "
            "GOAL: f1, precision=P or recall=R (e.g. precision=0.9); costs K more fusion fits (no branch refit)",
        )
    else:
        g.add_argument(
            "--decide",
            metavar="GOAL",
            nargs="?",
            type=checked_type(_goal_text),
            const="",
            default=None,
            help="add each item's decided tags and review band (scores are then calibrated); GOAL re-chooses "
            "the thresholds (f1, precision=P, recall=R), default: the goal the model was trained with",
        )
    g.add_argument("--review-band", type=float, default=None, help="review band half-width (default: 0.1)")
    g.add_argument(
        "--taxonomy",
        type=checked_type(Taxonomy.from_file),
        default=None,
        help="CSV tag,group[,parent] or TAAC label_dimension.csv",
    )
    g.add_argument(
        "--per-group-max",
        metavar="N|GROUP=N,...",
        type=checked_type(parse_group_counts),
        default=None,
        help="at most N decided tags per taxonomy group (0: no cap): one N for all, or per group, e.g. "
        "'scene=1,style=2' (groups not named: no cap) or '3,scene=1' (groups not named: 3)",
    )
    g.add_argument(
        "--per-group-min",
        metavar="N|GROUP=N,...",
        type=checked_type(parse_group_counts),
        default=None,
        help="at least N decided tags per taxonomy group: one N for all, or per group, e.g. "
        "'narrative=0,scene=1' (groups not named: 0) or '1,narrative=0' (groups not named: 1)",
    )
    g.add_argument(
        "--min-tags",
        type=int,
        default=None,
        help="at least N decided tags per item (default: 1 for f1, 0 for a precision or recall goal)",
    )


def _rules(args: argparse.Namespace, tags: list[str], base: Rules | None) -> Rules:
    base = base or Rules()
    if args.taxonomy is not None:
        args.taxonomy.check_vocabulary(tags)
    tax = args.taxonomy or base.taxonomy
    if (args.per_group_max or args.per_group_min) and tax is None:
        raise AdtagError("--per-group-max / --per-group-min need --taxonomy")
    if args.min_tags is not None and args.min_tags < 0:
        raise AdtagError(f"--min-tags {args.min_tags}: must be 0 or more")
    rules = Rules(
        taxonomy=tax,
        per_group_max=args.per_group_max if args.per_group_max is not None else base.per_group_max,
        per_group_min=args.per_group_min if args.per_group_min is not None else base.per_group_min,
        min_tags=args.min_tags if args.min_tags is not None else base.min_tags,
    )
    rules.check_groups(tax.groups if tax else [])  # a group the taxonomy lacks: exit 2 before any work
    return rules


def check_training_options(args: argparse.Namespace) -> None:
    """``adtag train --decide`` checks, before any training (the taxonomy rules)."""
    if args.decide is None:
        return
    if (args.per_group_max or args.per_group_min) and args.taxonomy is None:
        raise AdtagError("--per-group-max / --per-group-min need --taxonomy")
    if args.taxonomy is not None:
        Rules(args.taxonomy, args.per_group_max, args.per_group_min or 0).check_groups(args.taxonomy.groups)


def fit_for_training(args: argparse.Namespace, tagger: Any, items: list, model_dir: Path) -> Decider | None:
    """``adtag train --decide GOAL``: fit the layer and store it in the model folder."""
    if args.decide is None:
        return None
    from adtag.decisions.fit import fit_decider

    goal = parse_goal(args.decide)
    tags = tagger.vocab_.tags
    rules = _rules(args, tags, None)
    Y = tagger.vocab_.encode([it.tags for it in items], [it.id for it in items])
    band = 0.1 if args.review_band is None else args.review_band
    d = fit_decider(tagger, [it.id for it in items], Y, goal, rules, band, items=items)
    tagger.decider_ = d
    d.save(model_dir)
    m = d.metrics
    print(
        f"decisions ({m['goal']}): out-of-fold ECE {m['oof_ece_before']:.4f} -> {m['oof_ece_after']:.4f}, "
        f"micro F1 {m['oof_decisions']['micro_f1']:.4f}, macro F1 {m['oof_decisions']['macro_f1']:.4f}, "
        f"{m['tags_with_own_threshold']} tags with their own threshold"
    )
    return d


def decider_for_prediction(args: argparse.Namespace, model_dir: Path, tags: list[str]) -> Decider:
    d = Decider.load(model_dir)
    if d.tags != tags:
        raise AdtagError(f"{model_dir}: the decision layer was fitted for other tags; retrain with --decide")
    changed = args.decide or args.review_band is not None
    rules = _rules(args, tags, d.rules)
    if changed or rules != d.rules:
        d = d.with_goal(args.decide or None, args.review_band, rules)
    return d


def write_decided(
    args: argparse.Namespace, model_dir: Path, tags: list[str], ids: list[str], scores, decide_on=None
) -> None:
    """``adtag predict --decide``: ranked calibrated scores plus ``decided`` and ``review`` per item
    (``decide_on``: the scores to decide on, ``fit.scores_for_decisions``; default ``scores``)."""
    from adtag.decisions.io import write_decided_predictions

    d = decider_for_prediction(args, model_dir, tags)
    on = None if decide_on is None else np.asarray(decide_on)
    write_decided_predictions(args.out, ids, np.asarray(scores), d, args.top_k, on)
