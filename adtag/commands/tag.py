"""adtag tag: tag one video and explain each tag (which modalities carried it, the text read)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adtag.commands._common import add_scores_option, add_threads, check_model_dir, setup
from adtag.errors import AdtagError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "tag",
        help="tag one video and explain the tags",
        description=(
            "Extract a video with the encoders recorded in MODEL_DIR, then print its top tags with scores; "
            "for each tag, every branch's probability and its share of the stacker's decision; and the OCR "
            "and ASR text that was read."
        ),
    )
    p.add_argument("model_dir", type=Path, help="folder written by 'adtag train' on extracted video features")
    p.add_argument("video", type=Path, help="a video file")
    p.add_argument("--top-k", type=int, default=10, help="tags to show (default: 10)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--language", default=None, help="force the ASR language, e.g. zh")
    add_scores_option(p)
    add_threads(p)
    return p


def format_result(res: dict[str, Any]) -> str:
    lines = [f"{res['video']}  (modalities: {', '.join(res['modalities'])})", ""]
    for row in res["tags"]:
        bar = "#" * int(round(row["score"] * 20))
        lines.append(f"{row['score']:.3f} {bar:<20} {row['tag']}")
        shares = sorted(row["branches"].items(), key=lambda kv: -kv[1]["share"])
        for name, b in shares[:4]:
            lines.append(f"        {name:<24} p={b['probability']:.3f}  share {b['share'] * 100:4.0f}%")
    for key in ("decided", "review"):
        if res.get(key) is not None:
            lines += ["", f"{key}: " + (", ".join(f"{d['tag']} {d['score']:.2f}" for d in res[key]) or "(none)")]
    for key in ("ocr", "asr"):
        text = res["text"].get(key, "").replace("\n", " / ")
        lines.append("")
        lines.append(f"{key.upper()}: {text if text else '(none read)'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    check_model_dir(args.model_dir, "tag", "VIDEO")
    # Loading the model and five encoders, then decoding: ~15 s of silence otherwise.
    print(f"tagging {args.video}: loading the model and its encoders (~15 s), then extracting", file=sys.stderr)
    setup(args)
    from adtag.models.tagger import Tagger
    from adtag.tagging import check_language, tag_video

    language = check_language(args.language)  # before the model loads: a typo fails at once
    if not args.video.is_file():
        raise AdtagError(f"{args.video}: video not found")
    tagger = Tagger.load(args.model_dir)
    res = tag_video(tagger, args.video, args.top_k, language, scores=args.scores).to_json()
    print(json.dumps(res, ensure_ascii=False, indent=2) if args.json else format_result(res))
    return 0
