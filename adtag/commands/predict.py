"""adtag predict: score a manifest, a TAAC layout, or raw videos (extracted on the fly)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from adtag.commands._common import add_threads, check_model_dir, failure_line, setup
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
    add_threads(p)
    add_decide_options(p, "predict")
    return p


def items_from_input(path: Path, tagger: Tagger, language: str | None = None) -> tuple[list[Item], list[str]]:
    """Items ready to score, and the failures (videos that could not be read)."""
    from adtag.data.manifest import load_manifest
    from adtag.data.taac import is_taac_source

    if path.suffix in (".jsonl", ".json") or is_taac_source(path):
        return load_manifest(path), []
    from adtag.features.extract import extract_video
    from adtag.features.inputs import discover_inputs

    items, failures = [], []
    videos = discover_inputs([path])
    print(f"extracting {len(videos)} video(s) with the model's encoders (they take ~15 s to load)", file=sys.stderr)
    for it in videos:
        try:
            items.append(extract_video(it.video, tagger.config.encoders, language=language, item_id=it.id))
        except AdtagError as exc:
            failures.append(failure_line(it.video, exc))
    return items, failures


def run(args: argparse.Namespace) -> int:
    setup(args)
    from adtag.data.predictions import write_predictions
    from adtag.models.tagger import Tagger

    check_model_dir(args.model_dir, "predict", "INPUT")
    print(f"loading the model from {args.model_dir}", file=sys.stderr)
    tagger = Tagger.load(args.model_dir)
    items, failures = items_from_input(args.input, tagger, args.language)
    if not items:
        if failures:
            raise AdtagError(f"{args.input}: nothing to score, every video failed:\n  " + "\n  ".join(failures))
        raise AdtagError(f"{args.input}: nothing to score (no item found)")
    scores = tagger.predict_proba(items)
    if args.decide is not None:
        write_decided(args, args.model_dir, tagger.vocab_.tags, [it.id for it in items], scores)
    else:
        write_predictions(args.out, [it.id for it in items], scores, tagger.vocab_.tags, args.top_k)
    print(f"wrote {len(items)} predictions to {args.out}")
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    return 1 if failures else 0
