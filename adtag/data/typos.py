"""Catch typos inside a manifest: a modality, extra field or tag that only a handful of items use.

A misspelled modality (``frmes``) would otherwise become a new modality trained from one item,
and a misspelled tag (``室内/indor``) a new tag. Such names are reported with the lines that use
them and, when one is close, the name that was probably meant.
"""

from __future__ import annotations

import difflib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from adtag.data.manifest import Item
from adtag.errors import AdtagError

RARE_ITEMS = 5  # "fewer than a handful of items"
SHOWN_PLACES = 5  # lines named per rare name


@dataclass(frozen=True)
class RareName:
    kind: str  # "modality", "extra field" or "tag"
    name: str
    places: list[str]  # "line 7", or "item v3" where there are no lines (a TAAC layout)
    closest: str | None

    def message(self) -> str:
        n = len(self.places)
        shown = ", ".join(self.places[:SHOWN_PLACES]) + (f" and {n - SHOWN_PLACES} more" if n > SHOWN_PLACES else "")
        hint = f"; did you mean {self.closest!r}?" if self.closest else ""
        return f"{self.kind} {self.name!r} is used by only {n} item{'s' if n > 1 else ''} ({shown}){hint}"


def _names(item: Item) -> dict[str, Iterable[str]]:
    return {
        "modality": [*item.text, *item.features, *(["extra"] if item.extra else [])],
        "extra field": list(item.extra),
        "tag": list(item.tags or []),
    }


def item_lines(path: str | os.PathLike) -> dict[str, int]:
    """Line number of each item id in a JSON Lines manifest (empty for anything else)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".jsonl":
        return {}
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "id" in obj:
                lines.setdefault(str(obj["id"]), lineno)
    return lines


def rare_names(
    items: list[Item], lines: dict[str, int] | None = None, known_tags: Iterable[str] = ()
) -> list[RareName]:
    """Names used by fewer than a handful of items (and under a quarter of them); tags of a
    given vocabulary count as known, whatever their frequency."""
    lines = lines or {}
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for it in items:
        for kind, names in _names(it).items():
            for name in set(names):
                users[kind, name].append(it.id)
    limit = min(RARE_ITEMS, len(items) / 4)
    known = set(known_tags)
    out = []
    for (kind, name), ids in sorted(users.items()):
        if len(ids) >= limit or (kind == "tag" and name in known):
            continue
        common = [n for (k, n), u in users.items() if k == kind and len(u) >= limit]
        if kind == "tag":
            common = sorted(set(common) | known)
        close = difflib.get_close_matches(name, common, n=1, cutoff=0.6)
        places = [f"line {lines[i]}" if i in lines else f"item {i!r}" for i in ids]
        out.append(RareName(kind, name, places, close[0] if close else None))
    return out


def check_names(
    items: list[Item],
    source: str | os.PathLike,
    known_tags: Iterable[str] = (),
    strict: bool = False,
    warn=None,
) -> list[RareName]:
    """Warn about rare names (``warn`` receives each line); with ``strict``, stop with exit code 2."""
    found = rare_names(items, item_lines(source), known_tags)
    if not found:
        return found
    messages = [f"{source}: {r.message()}" for r in found]
    if strict:
        raise AdtagError("possible typos (--strict):\n  " + "\n  ".join(messages))
    if warn is not None:
        for m in messages:
            warn(f"warning: {m}")
        warn("warning: a typo here trains a modality or tag of its own; --strict makes this an error")
    return found
