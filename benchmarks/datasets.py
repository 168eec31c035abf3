"""Real multi-label sets from ../shared/data as adtag items (in memory, nothing copied).

The shared folder is found at ``$ADTAG_SHARED`` or ``<repo>/../shared``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import scipy.io as sio

from adtag.data.manifest import Item

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("ADTAG_SHARED", REPO.parent / "shared"))


def _items_from_views(views: dict[str, np.ndarray], labels: np.ndarray, tag_names: list[str]) -> list[Item]:
    items = []
    for i in range(labels.shape[0]):
        tags = [tag_names[j] for j in np.flatnonzero(labels[i] > 0)]
        feats = {name: np.asarray(v[i], dtype=np.float32) for name, v in views.items()}
        items.append(Item(id=str(i), tags=tags or None, features=feats))
    return [it for it in items if it.tags]


def load_mat(name: str) -> list[Item]:
    """3sources, yeast or emotions from their .mat file (views -> vector modalities)."""
    m = sio.loadmat(shared_dir() / "data" / "multiview" / f"{name}.mat")
    views = [np.asarray(v, dtype=np.float32) for v in m["view"].ravel()]
    if "view_name" in m:
        vnames = [str(s).strip().replace(" ", "_").lower() for s in m["view_name"].ravel()]
    else:
        vnames = [f"view{j}" for j in range(len(views))]
    labels = np.asarray(m["label"])
    if labels.shape[0] != views[0].shape[0]:
        labels = labels.T
    return _items_from_views(
        dict(zip(vnames, views, strict=True)), labels, [f"label{j}" for j in range(labels.shape[1])]
    )


def _read_arff(path: Path) -> tuple[list[str], np.ndarray]:
    text = path.read_text(encoding="utf-8", errors="replace")
    attrs, rows, data = [], [], "@data" not in text.lower()  # the scene files have no header
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        low = s.lower()
        if low.startswith("@attribute"):
            attrs.append(s.split()[1].strip("'\""))
        elif low.startswith("@data"):
            data = True
        elif data:
            rows.append([float(x) for x in s.split(",")])
    return attrs, np.asarray(rows, dtype=np.float32)


def load_scene() -> list[Item]:
    """MULAN scene (train + test pooled): 294 colour features in 6x49 spatial-colour blocks.

    Split into two views: the 49 blocks' first moments (means, 3 x 49... as stored: the first
    half of the columns) and the rest, so that fusion has two modalities to work with.
    """
    base = shared_dir() / "data" / "multiview"
    _, a = _read_arff(base / "scene-train.arff")
    _, b = _read_arff(base / "scene-test.arff")
    x = np.vstack([a, b])
    feats, labels = x[:, :-6], x[:, -6:]
    views = {"colour_mean": feats[:, :147], "colour_var": feats[:, 147:]}
    return _items_from_views(views, labels, ["beach", "sunset", "fall_foliage", "field", "mountain", "urban"])


def load_birds() -> list[Item]:
    """MULAN birds: audio feature views (train + test pooled), 19 species."""
    import pandas as pd

    base = shared_dir() / "data" / "multiview"
    df = pd.concat([pd.read_parquet(base / f"birds_{s}.parquet.brotli") for s in ("train", "test")], ignore_index=True)
    return _birds_items(df)


def _birds_items(df) -> list[Item]:
    cols = list(df.columns)
    label_cols = cols[-19:]
    feat_cols = cols[:-19]
    groups: dict[str, list[str]] = {}
    for c in feat_cols:
        key = "".join(ch for ch in str(c) if not ch.isdigit()).strip("_")
        key = key if key in ("audio-ssd", "cluster") else "segment_stats"
        groups.setdefault(key.replace("-", "_"), []).append(c)
    views = {k: df[v].to_numpy(dtype=np.float32) for k, v in groups.items()}
    labels = df[label_cols].to_numpy(dtype=np.float32)
    return _items_from_views(views, labels, [str(c) for c in label_cols])


def load_tnews(limit: int | None = None) -> list[Item]:
    """CLUE TNEWS dev: title + keywords, two Chinese text views, 15 classes (one tag each)."""
    path = shared_dir() / "data" / "zh_text" / "tnews" / "dev.json"
    items = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        obj = json.loads(line)
        text = {"title": obj["sentence"]}
        if obj.get("keywords"):
            text["keywords"] = obj["keywords"].replace(",", " ")
        items.append(Item(id=str(i), tags=[obj["label_desc"]], text=text))
        if limit and len(items) >= limit:
            break
    return items


LOADERS = {
    "3sources": lambda: load_mat("3sources"),
    "emotions": lambda: load_mat("emotions"),
    "yeast": lambda: load_mat("yeast"),
    "scene": load_scene,
    "birds": load_birds,
    "tnews": load_tnews,
}
