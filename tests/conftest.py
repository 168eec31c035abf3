"""Shared fixtures: small labelled manifests generated on the fly, and the shared data folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ADTAG_THREADS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def shared_data() -> Path:
    return Path(os.environ.get("ADTAG_SHARED", REPO.parent / "shared")) / "data"


TAGS = ["beach", "city", "food", "car", "music", "sport"]
ZH = {
    "beach": "海滩 阳光",
    "city": "城市 高楼",
    "food": "美食 餐厅",
    "car": "汽车 驾驶",
    "music": "音乐 歌曲",
    "sport": "运动 健身",
}


def make_manifest(root: Path, n: int = 90, seed: int = 0, with_nan: bool = False) -> Path:
    """Items whose tags leave evidence in text (English or Chinese), a sequence, a vector and extras.

    Each modality carries only part of the signal (noise, missing modalities), so fusion matters.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "f").mkdir(exist_ok=True)
    centers = np.random.default_rng(12345).normal(size=(len(TAGS), 12))  # the same world for every seed
    lines = []
    for i in range(n):
        y = rng.random(len(TAGS)) < 0.3
        if not y.any():
            y[rng.integers(len(TAGS))] = True
        tags = [t for t, b in zip(TAGS, y, strict=True) if b]
        item: dict = {"id": f"ad{i:03d}", "tags": tags}
        said = [t for t in tags if rng.random() < 0.6]
        if i % 3 == 0:
            item["text"] = {"ocr": " ".join(ZH[t] for t in said) + " 广告 立即 下载"}
        elif i % 3 == 1:
            item["text"] = {"ocr": " ".join(f"{t} {t}s" for t in said) + " buy now"}
        if i % 5:
            seq = centers[y].sum(0) * 0.7 + rng.normal(size=(int(rng.integers(2, 7)), 12))
            np.save(root / "f" / f"s{i}.npy", seq.astype(np.float32))
            item["features"] = {"frames": f"f/s{i}.npy"}
        vec = centers[y].sum(0) * 0.4 + rng.normal(size=12)
        np.save(root / "f" / f"v{i}.npy", vec.astype(np.float32))
        item.setdefault("features", {})["audio"] = f"f/v{i}.npy"
        item["extra"] = {"duration": float(rng.integers(5, 60)), "width": 720.0}
        lines.append(json.dumps(item, ensure_ascii=False))
    if with_nan:
        bad = np.full(12, np.nan, np.float32)
        np.save(root / "f" / "v0.npy", bad)
    path = root / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path / "data")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A model trained once for the session with the default stacker: (manifest, model_dir)."""
    from adtag.cli import main

    root = tmp_path_factory.mktemp("trained")
    m = make_manifest(root / "data", n=120, seed=1)
    assert main(["train", str(m), "--out", str(root / "model"), "--folds", "3", "--quiet"]) == 0
    return m, root / "model"


def fold_after_fold(spec, X, Y: np.ndarray, present: np.ndarray, folds: list, seed: int = 0) -> tuple:
    """The reference K-fold loop the library's jobs must reproduce: one branch fitted fold after fold
    in-process (fold 1 chooses the settings, later folds reuse them); out-of-fold probabilities, fold models."""
    from adtag.models.branch import fit_branch_fold, out_of_fold, settings

    first = fit_branch_fold(spec, X, Y, present, folds, seed, 0)
    rest = [fit_branch_fold(spec, X, Y, present, folds, seed, k, settings(first[1])) for k in range(1, len(folds))]
    return out_of_fold(Y.shape, folds, [first, *rest])
