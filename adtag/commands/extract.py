"""``adtag extract``: videos -> features and a manifest that ``adtag train``/``predict`` accept."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from adtag.commands._common import add_progress, failure_line

EXIT_SOME_FAILED = 1

DESCRIPTION = """\
Decode each video once and run the per-modality encoders (all weights ship inside installed
packages; nothing is downloaded): EfficientNet-Lite0 on a frame every 0.5 s -> 'frames' (T, 1280);
the Whisper-base encoder per 0.96 s -> 'audio' (T, 512); speech recognition -> text 'asr';
PP-OCRv4 on frames whose text changed -> text 'ocr'; multilingual-e5-small on both texts ->
'ocr_emb', 'asr_emb' (384); container metadata -> 'extra'. A modality a video lacks is left out.

Writes FEATURE_DIR/manifest.jsonl (one item per video, paths to .npy files under FEATURE_DIR/items/). The run is
resumable: run the same command again after an interruption (even kill -9) and it continues
where it stopped; finished videos are skipped."""

EPILOG = """\
exit status: 0 all videos extracted; 1 some videos failed (they are listed at the end and in
FEATURE_DIR/journal.jsonl; the manifest holds the others); 2 bad arguments or input (no such file,
encoders that differ from those FEATURE_DIR was started with).

examples:
  adtag extract ads/ --out feats/ --workers 2
  adtag extract train.jsonl --out feats/ --language zh
  adtag extract ad.mp4 --out feats/ --encoders visual=vit:/models/vit-large-384,ocr=none"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "extract",
        help="extract features from videos into a manifest",
        usage="adtag extract INPUT [INPUT ...] --out FEATURE_DIR [options]\n       adtag extract --list-encoders",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="a video file, a folder of videos (searched recursively; an item's id is its path inside the "
        "folder without the suffix, with the suffix where two files would share an id: ad.mp4, ad.avi), "
        "or a manifest (.jsonl) whose items have 'video' paths (tags are carried over)",
    )
    p.add_argument("--out", "-o", metavar="FEATURE_DIR", help="folder for the features and manifest.jsonl (required)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="parallel worker processes, each loading the models once (default 1; about 0.6 GiB of memory each); "
        "with --engine ray, Ray actors (default: one per CPU of the cluster / --threads)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="T",
        help="threads per worker (default: CPU cores / workers)",
    )
    p.add_argument(
        "--encoders",
        action="append",
        default=[],
        metavar="ROLE=NAME[:PATH],...",
        help="replace the encoder of a role (visual, audio, asr, ocr, text), or switch it off with ROLE=none; "
        "NAME is a registry name, PATH a local model folder for encoders that load one "
        "(e.g. visual=vit:/models/vit). Repeatable. See --list-encoders",
    )
    p.add_argument("--language", metavar="CODE", help="force the speech language, e.g. zh or en (default: detect)")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="on a resumed run, try again the videos that failed before (default: keep their recorded failure)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete FEATURE_DIR first and start again (needed to change encoders of an existing FEATURE_DIR)",
    )
    add_progress(p)
    from adtag.engines import add_engine_options

    add_engine_options(p)
    p.add_argument(
        "--gather",
        action="store_true",
        help="with --engine ray: send each video's arrays back to the driver, which writes the store "
        "(for a few nodes without a shared file system; the videos must still be readable on every node)",
    )
    p.add_argument("--list-encoders", action="store_true", help="list the registered encoders and exit")
    return p


def _list_encoders() -> int:
    from adtag.encoders import encoder_spec, list_encoders
    from adtag.features.extract import DEFAULT_ENCODERS

    defaults = set(DEFAULT_ENCODERS.values())
    for name in list_encoders():
        spec = encoder_spec(name)
        dim = f"{spec.dim}-d" if spec.dim else "text"
        mark = " (default)" if name in defaults else ""
        path = " :PATH" if spec.needs_path else ""
        print(f"{name}{path}{mark}\n    {dim}; weights: {spec.weights}\n    {spec.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    from adtag.errors import AdtagError

    if args.list_encoders:
        return _list_encoders()
    if not args.inputs:
        raise AdtagError("give at least one INPUT (a video, a folder of videos, or a manifest)")
    if not args.out:
        raise AdtagError("--out FEATURE_DIR is required")
    from adtag.engines import check_engine_args

    check_engine_args(args)
    if args.gather and args.engine != "ray":
        raise AdtagError("--gather only applies with --engine ray")
    if (args.workers is not None and args.workers < 1) or (args.threads is not None and args.threads < 1):
        raise AdtagError("--workers and --threads must be at least 1")

    from adtag import runtime
    from adtag.features.extract import default_threads, extract_to_dir
    from adtag.features.inputs import discover_inputs
    from adtag.features.pipeline import resolve_encoders

    encoders = resolve_encoders(args.encoders)
    if args.language:
        from adtag.encoders.asr import check_language

        check_language(args.language)
    notes: list[str] = []
    inputs = discover_inputs(args.inputs, notes)
    for note in notes:
        print(f"adtag: note: {note}", file=sys.stderr)
    if not inputs:
        raise AdtagError(f"no video files found in {', '.join(args.inputs)}")
    out = Path(args.out)
    if args.overwrite and out.exists():
        if not ((out / "store.json").is_file() or (out / "journal.jsonl").is_file()):
            raise AdtagError(f"{out} is not a FEATURE_DIR (no store.json); not deleting it")
        shutil.rmtree(out)
    if args.engine == "ray":
        manifest, failures = _extract_ray(args, inputs, out, encoders)
    else:
        workers = args.workers or 1
        threads = args.threads or default_threads(workers)
        runtime.configure(threads)
        manifest, failures = extract_to_dir(
            inputs,
            out,
            encoders=encoders,
            workers=workers,
            threads=threads,
            language=args.language,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
        )
    ok = len(inputs) - len(failures)
    if failures:
        print(f"{len(failures)} of {len(inputs)} videos failed:", file=sys.stderr)
        for f in failures:
            print(f"  {failure_line(f.video or f.id, Exception(f.reason))}", file=sys.stderr)
    if manifest is not None:
        print(f"{ok} of {len(inputs)} videos extracted -> {manifest}")
    else:
        print(f"no video could be extracted; nothing written to {out / 'manifest.jsonl'}", file=sys.stderr)
    return EXIT_SOME_FAILED if failures else 0


def _extract_ray(args: argparse.Namespace, inputs: list, out: Path, encoders: dict):
    from adtag import runtime
    from adtag.engines.ray_cluster import ray_session
    from adtag.engines.ray_extract import extract_to_dir_ray

    runtime.configure(1)
    with ray_session(args.address):
        return extract_to_dir_ray(
            inputs,
            out,
            encoders=encoders,
            workers=args.workers,
            threads=args.threads or 1,
            language=args.language,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
            gather=args.gather,
        )


def main(argv: list[str] | None = None) -> int:
    """Run ``extract`` alone (``python -m adtag.commands.extract``), with the CLI's error handling."""
    from adtag.cli import main as cli_main

    return cli_main(["extract", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
