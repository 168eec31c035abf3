"""The feature store: per-item ``.npy`` files plus an append-only journal, so runs resume.

Layout of a FEATURE_DIR::

    store.json        the encoders it was built with (a resumed run must use the same)
    journal.jsonl     one line per finished video: its manifest entry, or its failure
    items/<key>/*.npy one array per modality, written to a temporary name and renamed
    manifest.jsonl    written from the journal at the end of a run

A video counts as done only once its journal line is on disk, and that line is written after its
arrays are renamed into place; after ``kill -9`` the same command redoes at most the videos that
were in flight, and never reads a half-written array. Per-item files keep the manifest contract
(``features`` values are .npy paths) and random access by id; at a few hundred kB per ad the
write costs well under a millisecond next to seconds of extraction (see benchmarks/).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.manifest import Item, parse_item, write_manifest
from adtag.errors import AdtagError
from adtag.io import write_json

STORE_VERSION = 1


@dataclass(frozen=True)
class Failure:
    """A video that yielded no features: its id, its path, and why."""

    id: str
    video: str
    reason: str


def item_key(item_id: str) -> str:
    """A file-system-safe, collision-free folder name for an id."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)[:60].strip("._") or "item"
    return f"{safe}-{hashlib.sha1(item_id.encode('utf-8')).hexdigest()[:8]}"


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy under a temporary name, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FeatureStore:
    """A FEATURE_DIR: write arrays for an item, journal results, read back what is done."""

    def __init__(self, root: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.journal_path = self.root / "journal.jsonl"
        self.manifest_path = self.root / "manifest.jsonl"
        self.root.mkdir(parents=True, exist_ok=True)
        if config is not None:
            self._check_config(config)

    def _check_config(self, config: dict[str, Any]) -> None:
        path = self.root / "store.json"
        wanted = {"version": STORE_VERSION, **config}
        if path.is_file():
            have = json.loads(path.read_text(encoding="utf-8"))
            if have != wanted:
                raise AdtagError(
                    f"{self.root} holds features made with other settings ({have}); "
                    f"use a new --out folder, or --overwrite to start it again"
                )
        else:
            write_json(path, wanted)

    def remove_partial(self) -> int:
        """Delete temporary files a killed run left behind (never referenced by the journal)."""
        removed = 0
        for tmp in (self.root / "items").glob("*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def item_dir(self, item_id: str) -> Path:
        return self.root / "items" / item_key(item_id)

    def put_arrays(self, item_id: str, arrays: dict[str, np.ndarray]) -> dict[str, Path]:
        """Write one item's arrays; returns modality -> .npy path."""
        folder = self.item_dir(item_id)
        paths = {}
        for modality, array in arrays.items():
            paths[modality] = folder / f"{modality}.npy"
            save_array(paths[modality], array)
        return paths

    def records(self) -> list[dict[str, Any]]:
        """Journal records in order; a torn last line (a crash mid-write) is ignored."""
        if not self.journal_path.is_file():
            return []
        out = []
        with open(self.journal_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def append(self, record: dict[str, Any]) -> None:
        """Add one record durably (one write, then fsync); repairs a torn last line first."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with open(self.journal_path, "ab+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    fh.seek(0)
                    content = fh.read()
                    fh.truncate(content.rfind(b"\n") + 1)
                    fh.seek(0, os.SEEK_END)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def record_item(self, item: Item, source: str, timings: dict[str, Any] | None = None) -> None:
        self.append({"source": source, "ok": True, "item": item.to_json(self.root.resolve()), "timings": timings})

    def record_failure(self, failure: Failure, source: str) -> None:
        self.append({"source": source, "ok": False, "id": failure.id, "video": failure.video, "error": failure.reason})

    def done(self, retry_failed: bool = False) -> dict[str, dict[str, Any]]:
        """The last record per source (``id`` + video path) that counts as finished."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            if rec.get("ok") or not retry_failed:
                out[rec["source"]] = rec
            else:
                out.pop(rec["source"], None)
        return out

    def write_manifest(self, sources: list[str]) -> tuple[Path | None, list[Failure]]:
        """Write manifest.jsonl for ``sources`` in their order from the journal; return it and the failures."""
        done = self.done()
        root = self.root.resolve()
        items: list[Item] = []
        failures: list[Failure] = []
        for source in sources:
            rec = done.get(source)
            if rec is None:
                continue
            if rec["ok"]:
                items.append(parse_item(rec["item"], root, str(self.journal_path)))
            else:
                failures.append(Failure(rec["id"], rec["video"], rec["error"]))
        if not items:
            return None, failures
        write_manifest(items, self.manifest_path)
        return self.manifest_path, failures


def manifest_encoders(manifest: str | os.PathLike) -> dict[str, str] | None:
    """The encoders a manifest written by ``adtag extract`` was made with (from its store.json).

    ``adtag train`` records these in the model's config so that ``adtag predict`` on raw videos
    extracts the same features; None for a manifest that did not come from ``adtag extract``.
    """
    path = Path(manifest).parent / "store.json"
    if not path.is_file():
        return None
    try:
        encoders = json.loads(path.read_text(encoding="utf-8")).get("encoders")
    except (OSError, json.JSONDecodeError):
        return None
    return dict(encoders) if isinstance(encoders, dict) else None
