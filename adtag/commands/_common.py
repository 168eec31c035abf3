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
    p.add_argument(
        "--strict",
        action="store_true",
        help="a modality, extra field or tag used by fewer than 5 items (a likely typo) is an error, not a warning",
    )
    add_progress(p)
    add_threads(p)


def add_progress(p: argparse.ArgumentParser) -> None:
    """One name for switching the progress bars off; ``--quiet`` is accepted as its alias."""
    p.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bars (they go to stderr)")
    p.add_argument("--quiet", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def _holds_media(path: Path) -> bool:
    """Whether ``path`` is a media file or a folder with one (stops at the first found)."""
    from adtag.features.inputs import MEDIA_SUFFIXES

    if path.is_file():
        return path.suffix.lower() in MEDIA_SUFFIXES
    if path.is_dir():
        return any(f.suffix.lower() in MEDIA_SUFFIXES for f in path.rglob("*") if f.is_file())
    return False


def check_training_input(path: Path) -> None:
    """Catch the usual mix-ups before the manifest reader answers a bare 'not found'."""
    from adtag.data.taac import is_taac_source
    from adtag.errors import AdtagError

    if not path.is_dir() or is_taac_source(path):
        return
    if (path / "manifest.jsonl").is_file():
        raise AdtagError(f"{path} is a folder; did you mean its manifest, {path / 'manifest.jsonl'}?")
    if _holds_media(path):
        raise AdtagError(
            f"{path} is a folder of videos, not a manifest: extract their features first, e.g. "
            f"'adtag extract {path} --out feats/', add \"tags\" to the items of feats/manifest.jsonl, "
            "then 'adtag train feats/manifest.jsonl --out model/'"
        )


def load_training_data(args: argparse.Namespace):
    """The items and vocabulary of train and ablate, with mix-ups and likely typos reported."""
    import sys

    from adtag.data.manifest import load_manifest
    from adtag.data.typos import check_names
    from adtag.data.vocab import Vocabulary

    check_training_input(args.manifest)
    items = load_manifest(args.manifest)
    vocab = Vocabulary.from_file(args.vocab) if args.vocab else None
    known = vocab.tags if vocab is not None else ()
    check_names(items, args.manifest, known, strict=args.strict, warn=lambda m: print(m, file=sys.stderr))
    return items, vocab


def check_model_dir(model_dir: Path, command: str, second: str) -> None:
    """A model folder holds config.json; videos in its place mean the two arguments were swapped."""
    from adtag.errors import AdtagError

    if (model_dir / "config.json").is_file():
        return
    if _holds_media(model_dir):
        raise AdtagError(
            f"{model_dir} holds videos, not a model (no config.json): the arguments look swapped; "
            f"the model folder comes first: adtag {command} MODEL_DIR {second}"
        )


def failure_line(path: object, exc: Exception) -> str:
    """``path: reason``, without the path twice when the reason already starts with it."""
    reason = str(exc)
    return reason if reason.startswith(str(path)) else f"{path}: {reason}"
