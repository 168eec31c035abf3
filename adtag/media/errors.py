"""The error raised for a file that cannot be decoded; it always names the file."""

from __future__ import annotations

from pathlib import Path

from adtag.errors import AdtagError


class MediaError(AdtagError):
    """A video or audio file that is missing, empty, not media, or broken."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
