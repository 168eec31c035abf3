"""The tag vocabulary: an ordered list of tags, read from ``label_id.txt`` or the training items."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from adtag.errors import AdtagError


class Vocabulary:
    """Ordered tags with a tag -> column index."""

    def __init__(self, tags: Sequence[str]) -> None:
        tags = list(tags)
        if not tags:
            raise AdtagError("the tag vocabulary is empty")
        if len(set(tags)) != len(tags):
            dup = sorted({t for t in tags if tags.count(t) > 1})
            raise AdtagError(f"the tag vocabulary repeats tags: {dup[:5]}")
        self.tags = tags
        self.index = {t: i for i, t in enumerate(tags)}

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Vocabulary:
        """Read ``tag<TAB>id`` lines (TAAC ``label_id.txt``) or one tag per line."""
        path = Path(path)
        if not path.is_file():
            raise AdtagError(f"{path}: vocabulary file not found")
        pairs: list[tuple[int, str]] = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 1:
                pairs.append((len(pairs), parts[0].strip()))
            else:
                try:
                    pairs.append((int(parts[1].split()[0]), parts[0].strip()))
                except (ValueError, IndexError):
                    raise AdtagError(f"{path}:{lineno}: expected 'tag<TAB>id'") from None
        ids = [i for i, _ in pairs]
        if len(set(ids)) != len(ids):
            raise AdtagError(f"{path}: tag ids repeat")
        return cls([t for _, t in sorted(pairs)])

    @classmethod
    def from_items(cls, tag_lists: Iterable[Sequence[str] | None]) -> Vocabulary:
        tags = sorted({t for tl in tag_lists if tl for t in tl})
        return cls(tags)

    def encode(self, tag_lists: Sequence[Sequence[str]], ids: Sequence[str] | None = None) -> np.ndarray:
        """Multi-hot matrix (n, n_tags); an unknown tag is an error naming the item."""
        y = np.zeros((len(tag_lists), len(self.tags)), dtype=np.float32)
        for row, tl in enumerate(tag_lists):
            for t in tl:
                col = self.index.get(t)
                if col is None:
                    who = f"item {ids[row]!r}" if ids is not None else f"item #{row}"
                    raise AdtagError(f"{who}: tag {t!r} is not in the vocabulary")
                y[row, col] = 1.0
        return y
