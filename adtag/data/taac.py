"""Read the TAAC-2021 tagging layout directly, no conversion step.

Accepted sources:
- a baseline datafile (``baseline_datafile_{train,val}.txt``): blocks of four paths
  (``video_npy`` T x 1024, ``audio_npy`` T x 128, ``image_jpg``, ``text_txt``) then the tags;
- a ``tagging_info.txt`` (``<md5>.mp4<TAB>tag,tag,...``), with the feature folders looked up
  beside it;
- a folder holding ``video_npy/``, ``audio_npy/``, ``text_txt/`` (and optionally a
  ``tagging_info*.txt``).
Ids drop ``.mp4``. Modalities: ``frames`` (video_npy), ``audio`` (audio_npy), ``ocr``, ``asr``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from adtag.data.manifest import Item
from adtag.errors import AdtagError

FEATURE_DIRS = {"frames": "video_npy", "audio": "audio_npy"}


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.strip()
    return ""


def is_taac_source(path: str | os.PathLike) -> bool:
    path = Path(path)
    if path.is_dir():
        return any((path / d).is_dir() for d in ("video_npy", "audio_npy", "text_txt"))
    if path.is_file() and path.suffix == ".txt":
        first = _first_line(path)
        return first.endswith(".npy") or ".mp4\t" in first
    return False


def read_text_json(path: Path) -> dict[str, str]:
    """A ``text_txt`` file: ``{"video_ocr": "a|b", "video_asr": "x|y"}`` -> ``{"ocr", "asr"}``."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{path}: not a TAAC text JSON file ({exc})") from None
    if not isinstance(obj, dict):
        raise AdtagError(f"{path}: expected a JSON object with video_ocr / video_asr")
    out = {}
    for key, name in (("video_ocr", "ocr"), ("video_asr", "asr")):
        val = obj.get(key)
        if isinstance(val, str) and val.strip():
            out[name] = "\n".join(p for p in val.split("|") if p.strip())
    return out


def read_tagging_info(path: str | os.PathLike) -> dict[str, list[str]]:
    """``<md5>.mp4<TAB>tag,tag`` -> {id: tags}."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise AdtagError(f"{path}:{lineno}: expected '<id>.mp4<TAB>tag,tag,...'")
        vid = parts[0].strip().removesuffix(".mp4")
        if vid in out:
            raise AdtagError(f"{path}:{lineno}: duplicate id {vid!r}")
        out[vid] = [t.strip() for t in parts[1].split(",") if t.strip()]
    return out


def _resolve(raw: str, base: Path) -> Path:
    p = Path(raw)
    if p.is_absolute():
        return p
    for root in (base, Path.cwd()):
        cand = (root / p).resolve()
        if cand.exists():
            return cand
    return (base / p).resolve()


def read_datafile(path: Path) -> list[Item]:
    lines = path.read_text(encoding="utf-8").splitlines()
    items: list[Item] = []
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines + [""], start=1):
        if line.strip():
            block.append((lineno, line.strip()))
            continue
        if not block:
            continue
        if len(block) != 5:
            raise AdtagError(f"{path}:{block[0][0]}: a block needs 4 paths and a tag line, got {len(block)} lines")
        paths = [_resolve(p, path.parent) for _, p in block[:4]]
        vid = Path(block[0][1]).stem
        item = Item(id=vid, tags=[t.strip() for t in block[4][1].split(",") if t.strip()])
        for name, p in zip(("frames", "audio"), paths[:2], strict=True):
            if not p.is_file():
                raise AdtagError(f"{path}:{block[0][0]}: missing file {p}")
            item.features[name] = p
        if paths[3].is_file():
            item.text = read_text_json(paths[3])
        items.append(item)
        block = []
    if not items:
        raise AdtagError(f"{path}: no blocks found")
    return items


def _index(folder: Path, suffix: str) -> dict[str, Path]:
    """One walk of a feature folder: file stem -> path (first found wins)."""
    out: dict[str, Path] = {}
    if folder.is_dir():
        for p in sorted(folder.rglob(f"*{suffix}")):
            out.setdefault(p.stem, p)
    return out


def read_folder(root: Path, tags: dict[str, list[str]] | None) -> list[Item]:
    feats = {name: _index(root / d, ".npy") for name, d in FEATURE_DIRS.items()}
    texts = _index(root / "text_txt", ".txt")
    ids: set[str] = set(tags or {}) | set(texts)
    for index in feats.values():
        ids.update(index)
    items = []
    for vid in sorted(ids):
        item = Item(id=vid, tags=(tags or {}).get(vid) if tags is not None else None)
        for name, index in feats.items():
            if vid in index:
                item.features[name] = index[vid]
        if vid in texts:
            item.text = read_text_json(texts[vid])
        items.append(item)
    if not items:
        raise AdtagError(f"{root}: no TAAC items found")
    return items


def read_taac(path: str | os.PathLike) -> list[Item]:
    path = Path(path)
    if path.is_dir():
        infos = sorted(path.glob("tagging_info*.txt"))
        return read_folder(path, read_tagging_info(infos[0]) if infos else None)
    if _first_line(path).endswith(".npy"):
        return read_datafile(path)
    tags = read_tagging_info(path)
    for root in (path.parent, path.parent.parent):
        if any((root / d).is_dir() for d in ("video_npy", "audio_npy", "text_txt")):
            items = read_folder(root, tags)
            return [it for it in items if it.id in tags]
    return [Item(id=k, tags=v) for k, v in tags.items()]
