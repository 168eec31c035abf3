"""What ``adtag extract`` reads: video files, folders of them, or manifests with ``video`` paths."""

from __future__ import annotations

import os
from dataclasses import replace
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


def _folder(path: Path) -> list[tuple[Item, str]]:
    items = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            f = Path(root) / name
            if name.startswith(".") or f.suffix.lower() not in MEDIA_SUFFIXES:
                continue
            rel = f.relative_to(path)
            items.append((Item(id=rel.with_suffix("").as_posix(), video=f), rel.as_posix()))
    return items


def discover_inputs(paths: list[str | os.PathLike], notes: list[str] | None = None) -> list[Item]:
    """Items to extract, in a stable order; a manifest's tags and other fields are carried over.

    A folder is searched recursively for media files; an item's id is its path inside the folder
    without the suffix (a video file given alone: its name without the suffix). Files whose ids
    would collide (``ad.mp4`` and ``ad.avi``) keep their suffix instead (``ad.mp4``, ``ad.avi``)
    and a line saying so is added to ``notes``. Raises AdtagError for a missing path, or for ids
    that still repeat (a manifest's own ids are never changed).
    """
    found: list[tuple[Item, str | None]] = []  # the item, and its id with the suffix kept (None: given id)
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_folder(path))
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            found.extend((item, None) for item in read_items(path))
        elif path.exists():
            found.append((Item(id=path.stem, video=path), path.name))
        else:
            raise AdtagError(f"{path}: no such file or folder")
    groups: dict[str, list[int]] = {}
    for i, (item, _) in enumerate(found):
        groups.setdefault(item.id, []).append(i)
    items = [item for item, _ in found]
    for item_id, members in groups.items():
        if len(members) > 1 and all(found[i][1] is not None for i in members):
            for i in members:
                items[i] = replace(items[i], id=found[i][1])
            if notes is not None:
                renamed = ", ".join(repr(items[i].id) for i in members)
                notes.append(f"{len(members)} files share the id {item_id!r}; their ids keep the suffix: {renamed}")
    seen: dict[str, Item] = {}
    for item in items:
        if item.id in seen:
            raise AdtagError(f"two inputs have the id {item.id!r}: {seen[item.id].video} and {item.video}")
        seen[item.id] = item
    return items


def source_key(item: Item) -> str:
    """What identifies a unit of work in the journal: the id and the video it comes from."""
    return f"{item.id}\t{Path(item.video).resolve() if item.video else ''}"
