"""The ablation's cheaper stacker settings reach only the rows they name; the headline row stays default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adtag.ablation import run_ablation
from adtag.ablation_report import to_markdown
from adtag.data.manifest import read_items
from adtag.models.tagger import TrainConfig

from .conftest import make_manifest


def test_row_stackers_leave_the_headline_row_alone(tmp_path: Path):
    items = read_items(make_manifest(tmp_path / "data", n=48))
    cfg = replace(TrainConfig(), folds=2, modalities=["ocr", "audio"], jobs=1)
    fusions = ("stack", "mean")
    kw = {"config": cfg, "outer_folds": 2, "fusions": fusions, "progress": False}
    full = run_ablation(items, stackers={}, **kw)
    cheap = {"single": {"max_epochs": 0}, "combinations": {"n_bags": 2, "max_epochs": 1}}
    fast = run_ablation(items, stackers=cheap, **kw)
    # the headline row and the fusions without a stacker: identical predictions
    for key in ("fusion:stack", "fusion:mean"):
        np.testing.assert_array_equal(full["predictions"][key], fast["predictions"][key])
    # every row of every table is still there, in the same order
    for table in ("single", "combinations", "fusion"):
        assert [r["name"] for r in full["tables"][table]] == [r["name"] for r in fast["tables"][table]]
    assert len(fast["tables"]["single"]) == 2 and len(fast["tables"]["combinations"]) == 1
    # per-row CPU-seconds: the branches and every row of the tables
    assert {"branches", "single:ocr", "fusion:stack"} <= set(fast["cpu_s"])
    assert fast["stacker_options"] == {"default": {}, **cheap}
    md = to_markdown(fast)
    assert "max_epochs=0" in md and "n_bags=2" in md and "--full-stackers" in md
    assert "--full-stackers" not in to_markdown(full)


def test_row_settings_reach_the_stackers_in_the_workers(tmp_path: Path):
    """The settings are not dropped on the way to the worker processes: a wrong one fails there."""
    items = read_items(make_manifest(tmp_path / "data", n=24))
    cfg = replace(TrainConfig(), folds=2, modalities=["audio"], jobs=2)
    with pytest.raises(TypeError, match="no_such_setting"):
        run_ablation(
            items,
            config=cfg,
            outer_folds=2,
            fusions=("mean",),
            progress=False,
            stackers={"single": {"no_such_setting": 1}},
        )
