"""The ablation's outer folds in worker processes give the same tables as one process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from adtag.ablation import run_ablation
from adtag.data.manifest import read_items
from adtag.models.tagger import TrainConfig

from .conftest import make_manifest


def test_outer_folds_in_workers_match_one_process(tmp_path: Path):
    items = read_items(make_manifest(tmp_path / "data", n=60))
    cfg = replace(TrainConfig(), folds=2, modalities=["ocr", "audio"])
    fusions = ("mean", "best-branch")
    one = run_ablation(items, config=replace(cfg, jobs=1), outer_folds=2, fusions=fusions, progress=False)
    two = run_ablation(items, config=replace(cfg, jobs=2), outer_folds=2, fusions=fusions, progress=False)
    assert one["tables"] == two["tables"]
    names = [r["name"] for r in two["tables"]["combinations"]]
    assert names in (["ocr+audio"], ["audio+ocr"])  # the combination of both modalities
    for k in one["predictions"]:
        np.testing.assert_allclose(one["predictions"][k], two["predictions"][k], rtol=1e-5, atol=1e-6)


def test_small_feature_files_are_read_once(tmp_path: Path, monkeypatch):
    """The outer folds' jobs get the items with their feature arrays in memory (each file read once, with
    the checks training makes), not the paths each fold reads again for its training and test parts."""
    import adtag.ablation as ablation
    import adtag.data.modalities as modalities

    items = read_items(make_manifest(tmp_path / "data", n=40))
    files = [p for it in items for p in it.features.values()]
    reads, load = [], np.load
    monkeypatch.setattr(modalities.np, "load", lambda f, **kw: reads.append(f) or load(f, **kw))
    cfg = replace(TrainConfig(), folds=2, modalities=["audio"], jobs=1)
    once = run_ablation(items, config=cfg, outer_folds=2, fusions=("mean",), progress=False)
    assert files and sorted(map(str, reads)) == sorted(map(str, files))
    reads.clear()
    monkeypatch.setattr(ablation, "IN_MEMORY_BYTES", 0)  # above the budget: the paths travel, as before
    again = run_ablation(items, config=cfg, outer_folds=2, fusions=("mean",), progress=False)
    audio = [p for it in items for k, p in it.features.items() if k == "audio"]
    assert len(reads) >= 2 * len(audio)  # each outer fold reads every item's file (its training and test parts)
    assert once["tables"] == again["tables"]
