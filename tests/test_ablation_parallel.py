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
