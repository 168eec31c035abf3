"""What ``adtag extract`` reads: video files, folders of them, or manifests with ``video`` paths."""

from __future__ import annotations

import os
from pathlib import Path

from adtag.data.manifest import Item, read_items
from adtag.errors import AdtagError

MEDIA_SUFFIXES = {
    ".mp4",
    ".mov",
    ".m4v",
    ".mkv",
    ".webm",
    ".avi",
    ".flv",
    ".ts",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".3gp",
    ".m4a",
    ".mp3",
    ".wav",
    ".aac",
    ".flac",
    ".ogg",
    ".opus",
}
MANIFEST_SUFFIXES = {".jsonl", ".json"}


def _folder(path: Path) -> list[Item]:
    items = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            f = Path(root) / name
            if name.startswith(".") or f.suffix.lower() not in MEDIA_SUFFIXES:
                continue
            rel = f.relative_to(path).with_suffix("")
            items.append(Item(id=rel.as_posix(), video=f))
    return items


def discover_inputs(paths: list[str | os.PathLike]) -> list[Item]:
    """Items to extract, in a stable order; a manifest's tags and other fields are carried over.

    A folder is searched recursively for media files; an item's id is its path inside the folder
    without the suffix. Raises AdtagError for a missing path or a repeated id.
    """
    items: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            items.extend(_folder(path))
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            items.extend(read_items(path))
        elif path.exists():
            items.append(Item(id=path.stem, video=path))
        else:
            raise AdtagError(f"{path}: no such file or folder")
    seen: dict[str, Item] = {}
    for item in items:
        if item.id in seen:
            raise AdtagError(f"two inputs have the id {item.id!r}: {seen[item.id].video} and {item.video}")
        seen[item.id] = item
    return items


def source_key(item: Item) -> str:
    """What identifies a unit of work in the journal: the id and the video it comes from."""
    return f"{item.id}\t{Path(item.video).resolve() if item.video else ''}"
