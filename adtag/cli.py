"""The ``adtag`` command line: thin, it parses arguments and calls the stages."""

from __future__ import annotations

import argparse
import importlib
import sys

from adtag import __version__
from adtag.errors import AdtagError

# Each command lives in adtag/commands/<name>.py with ``add_parser(subparsers)`` and ``run(args)``.
COMMANDS = ["demo", "train", "predict", "evaluate", "ablate", "extract", "tag", "serve", "audit"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's (importing every command would import torch)."""
    parser = argparse.ArgumentParser(
        prog="adtag",
        description=(
            "Tag video ads with a taxonomy: per-modality branch models give out-of-fold "
            "meta-features that a stacker fuses into tag scores (TAAC-2021 winning recipe)."
        ),
        epilog="Run 'adtag COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"adtag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        module = importlib.import_module(f"adtag.commands.{name}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except AdtagError as exc:
        print(f"adtag: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("adtag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
