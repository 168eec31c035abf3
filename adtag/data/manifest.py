"""The manifest: JSON Lines, one item per line.

``{"id": "v1", "tags": [...], "video": "clips/v1.mp4", "text": {"ocr": "...", "asr": "..."},
"features": {"frames": "f/v1.npy"}, "extra": {"duration": 30.0, "width": 720},
"scores": {"my_model": "s/v1.npy"}}``

Only ``id`` is required (``tags`` for training). Every key under ``text``, ``features`` and
``scores`` names a modality; ``extra`` is one tabular modality; ``scores`` are external models'
per-tag scores (see adtag.data.scores). Paths are relative to the manifest's folder.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.scores import parse_manifest_scores
from adtag.errors import AdtagError
from adtag.io import write_text

KNOWN_KEYS = {"id", "tags", "video", "text", "features", "extra", "scores"}


@dataclass
class Item:
    """One ad: its id, optional tags, and whatever modalities it has."""

    id: str
    tags: list[str] | None = None
    video: Path | None = None
    text: dict[str, str] = field(default_factory=dict)
    # A path to a .npy file, or an array already in memory (extraction on the fly, the service).
    features: dict[str, Path | np.ndarray] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    # External models' per-tag scores (adtag.data.scores): a .npy path, an array or {tag: score}.
    scores: dict[str, Any] = field(default_factory=dict)

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        """Serialise, writing paths relative to ``root`` when they lie under it."""

        def rel(p: Path) -> str:
            if root is not None:
                try:
                    return os.path.relpath(p, root)
                except ValueError:
                    pass
            return str(p)

        out: dict[str, Any] = {"id": self.id}
        if self.tags is not None:
            out["tags"] = list(self.tags)
        if self.video is not None:
            out["video"] = rel(self.video)
        if self.text:
            out["text"] = dict(self.text)
        if self.features:
            out["features"] = {k: rel(v) for k, v in self.features.items() if isinstance(v, Path)}
        if self.extra:
            out["extra"] = dict(self.extra)
        scores = {
            k: rel(v) if isinstance(v, Path) else dict(v)
            for k, v in self.scores.items()
            if not isinstance(v, np.ndarray)
        }
        if scores:
            out["scores"] = scores
        return out


def _fail(source: str, lineno: int, msg: str) -> AdtagError:
    return AdtagError(f"{source}, line {lineno}: {msg}")


def parse_item(obj: Any, root: Path, source: str = "<manifest>", lineno: int = 0) -> Item:
    """Validate one decoded manifest object and resolve its paths against ``root``."""
    if not isinstance(obj, dict):
        raise _fail(source, lineno, f"expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - KNOWN_KEYS
    if unknown:
        raise _fail(source, lineno, f"unknown field(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    item_id = obj.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
        raise _fail(source, lineno, "field 'id' is required and must be a non-empty string")
    tags = obj.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise _fail(source, lineno, "field 'tags' must be a list of non-empty strings")
        tags = list(dict.fromkeys(t.strip() for t in tags))
    video = obj.get("video")
    if video is not None and not isinstance(video, str):
        raise _fail(source, lineno, "field 'video' must be a path string")
    text = obj.get("text") or {}
    if not isinstance(text, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in text.items()):
        raise _fail(source, lineno, "field 'text' must map modality names to strings")
    feats = obj.get("features") or {}
    if not isinstance(feats, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in feats.items()):
        raise _fail(source, lineno, "field 'features' must map modality names to .npy paths")
    extra = obj.get("extra") or {}
    if not isinstance(extra, dict):
        raise _fail(source, lineno, "field 'extra' must map names to numbers")
    clean_extra: dict[str, float] = {}
    for k, v in extra.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _fail(source, lineno, f"extra.{k} must be a finite number, got {v!r}")
        clean_extra[str(k)] = float(v)
    scores = parse_manifest_scores(obj.get("scores"), root, lambda msg: _fail(source, lineno, msg))
    clash = (set(text) & set(feats)) | (set(scores) & (set(text) | set(feats) | {"extra"}))
    if clash or "extra" in text or "extra" in feats:
        raise _fail(source, lineno, f"modality names must be unique across text/features/scores: {sorted(clash)}")
    return Item(
        id=str(item_id),
        tags=tags,
        video=(root / video) if video else None,
        text={k: v for k, v in text.items()},
        features={k: root / v for k, v in feats.items()},
        extra=clean_extra,
        scores=scores,
    )


def read_items(path: str | os.PathLike) -> list[Item]:
    """Read a JSON Lines manifest; every error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise AdtagError(f"{path}: manifest not found")
    root = path.parent.resolve()
    items: list[Item] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(str(path), lineno, f"not valid JSON ({exc.msg})") from None
            item = parse_item(obj, root, str(path), lineno)
            if item.id in seen:
                raise _fail(str(path), lineno, f"duplicate id {item.id!r} (first on line {seen[item.id]})")
            seen[item.id] = lineno
            items.append(item)
    if not items:
        raise AdtagError(f"{path}: manifest is empty")
    return items


def load_manifest(path: str | os.PathLike) -> list[Item]:
    """Load a manifest file or a TAAC-2021 layout (folder or datafile), whichever ``path`` is."""
    from adtag.data.taac import is_taac_source, read_taac

    if is_taac_source(path):
        return read_taac(path)
    return read_items(path)


def write_manifest(items: list[Item], path: str | os.PathLike) -> None:
    """Write items as JSON Lines atomically, paths relative to the manifest's folder."""
    path = Path(path)
    root = path.parent.resolve()
    lines = [json.dumps(it.to_json(root), ensure_ascii=False) for it in items]
    write_text(path, "\n".join(lines) + "\n")
