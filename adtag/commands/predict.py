"""adtag predict: score a manifest, a TAAC layout, or raw videos (extracted on the fly)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from adtag.commands._common import add_scores_option, add_threads, attach_scores, check_model_dir, failure_line, setup
from adtag.decisions.cli import add_decide_options, write_decided  # numpy only
from adtag.errors import AdtagError

if TYPE_CHECKING:  # the model layer loads torch: imported when the command runs, not for --help
    from adtag.data.manifest import Item
    from adtag.models.tagger import Tagger


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="write top-k tag predictions (TAAC submission JSON)",
        description=(
            "Score items with a trained MODEL_DIR. INPUT is a manifest, a TAAC layout, a video file or a "
            "folder of videos; videos are extracted on the fly with the encoders recorded in the model. "
            "Writes {id: {result: [{labels, scores}]}}. Exit code 2 on bad input; 1 if some videos failed."
        ),
    )
    p.add_argument("model_dir", type=Path, help="folder written by 'adtag train'")
    p.add_argument("input", type=Path, help="manifest.jsonl, TAAC layout, video file or folder of videos")
    p.add_argument("--out", type=Path, required=True, help="predictions JSON to write")
    p.add_argument("--top-k", type=int, default=20, help="tags kept per item (default: 20)")
    p.add_argument("--language", default=None, help="force the ASR language for raw videos, e.g. zh")
    add_scores_option(p)
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="with --engine ray: actors (default: 1 per CPU)"
    )
    add_threads(p)
    add_decide_options(p, "predict")
    from adtag.engines import add_engine_options

    add_engine_options(p)
    return p


def items_from_input(path: Path, tagger: Tagger, language: str | None = None) -> tuple[list[Item], list[str]]:
    """Items ready to score, and the failures (videos that could not be read)."""
    from adtag.data.manifest import load_manifest
    from adtag.data.taac import is_taac_source

    if path.suffix in (".jsonl", ".json") or is_taac_source(path):
        return load_manifest(path), []
    from adtag.features.extract import get_extractor
    from adtag.features.inputs import discover_inputs
    from adtag.tagging import check_language, read_video

    language = check_language(language)
    extractor = get_extractor(tagger.config.encoders)
    items, failures = [], []
    videos = discover_inputs([path])
    print(f"extracting {len(videos)} video(s) with the model's encoders (they take ~15 s to load)", file=sys.stderr)
    for it in videos:
        try:
            items.append(read_video(it.video, extractor, language=language, item_id=it.id).item)
        except AdtagError as exc:
            failures.append(failure_line(it.video, exc))
    return items, failures


def _predict_ray(args: argparse.Namespace, tagger: Tagger) -> int:
    """Score on a Ray cluster: actors holding the Tagger, the same TAAC JSON in input order."""
    from adtag.data.manifest import load_manifest
    from adtag.data.predictions import write_predictions
    from adtag.data.taac import is_taac_source
    from adtag.engines.ray_cluster import ray_session
    from adtag.engines.ray_predict import predict_ray
    from adtag.features.inputs import discover_inputs

    raw = not (args.input.suffix in (".jsonl", ".json") or is_taac_source(args.input))
    items = None if raw else load_manifest(args.input)
    if items is not None:
        attach_scores(items, args, tagger.vocab_.tags)
    elif getattr(args, "scores", None):
        raise AdtagError("--scores with --engine ray needs a manifest or TAAC input (actors extract videos)")
    videos = discover_inputs([args.input]) if raw else None
    with ray_session(args.address):
        ids, scores, failures = predict_ray(
            args.model_dir,
            items,
            videos,
            args.language,
            args.workers,
            args.threads or 1,
            progress=True,
            decide=args.decide is not None,
        )
    if scores is None:
        raise AdtagError(f"{args.input}: nothing to score" + (f" ({len(failures)} failed)" if failures else ""))
    if args.decide is not None:  # ranked scores and the decision layer's own, side by side
        write_decided(args, args.model_dir, tagger.vocab_.tags, ids, scores[:, 0], scores[:, 1])
    else:
        write_predictions(args.out, ids, scores, tagger.vocab_.tags, args.top_k)
    print(f"wrote {len(ids)} predictions to {args.out}")
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    return 1 if failures else 0


def run(args: argparse.Namespace) -> int:
    setup(args)
    from adtag.data.predictions import write_predictions
    from adtag.engines import check_engine_args
    from adtag.models.tagger import Tagger

    check_engine_args(args)
    check_model_dir(args.model_dir, "predict", "INPUT")
    print(f"loading the model from {args.model_dir}", file=sys.stderr)
    tagger = Tagger.load(args.model_dir)  # a damaged model folder fails here, before any cluster work
    if args.engine == "ray":
        return _predict_ray(args, tagger)
    items, failures = items_from_input(args.input, tagger, args.language)
    if not items:
        if failures:
            raise AdtagError(f"{args.input}: nothing to score, every video failed:\n  " + "\n  ".join(failures))
        raise AdtagError(f"{args.input}: nothing to score (no item found)")
    attach_scores(items, args, tagger.vocab_.tags)
    if args.decide is not None:
        from adtag.decisions.fit import scores_for_decisions

        scores, decide_on = scores_for_decisions(tagger, items)  # ranked, and the decision layer's own
        write_decided(args, args.model_dir, tagger.vocab_.tags, [it.id for it in items], scores, decide_on)
    else:
        scores = tagger.predict_proba(items)
        write_predictions(args.out, [it.id for it in items], scores, tagger.vocab_.tags, args.top_k)
    print(f"wrote {len(items)} predictions to {args.out}")
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    return 1 if failures else 0
