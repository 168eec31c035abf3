"""Bring-your-own-model scores: the data contract (manifest key, --scores files) and the stacker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adtag.cli import main
from adtag.data.manifest import read_items, write_manifest
from adtag.data.modalities import infer_modalities
from adtag.data.scores import attach_score_files, score_matrix
from adtag.errors import AdtagError

TAGS = ["car", "food", "game"]


def _manifest(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def _submission(path: Path, rows: dict[str, dict[str, float]], **top) -> Path:
    obj = {vid: {"result": [{"labels": list(s), "scores": list(s.values())}]} for vid, s in rows.items()}
    path.write_text(json.dumps({**top, **obj}), encoding="utf-8")
    return path


def test_manifest_scores_npy_and_inline(tmp_path: Path):
    np.save(tmp_path / "a.npy", np.array([0.1, 0.8, 0.3], np.float32))
    m = _manifest(
        tmp_path,
        [
            {"id": "a", "tags": ["food"], "scores": {"vis": "a.npy"}},
            {"id": "b", "tags": ["car"], "scores": {"vis": {"car": 0.9, "game": 0.2}}},
            {"id": "c", "tags": ["game"], "text": {"title": "x"}},
        ],
    )
    items = read_items(m)
    specs = {s.name: s.kind for s in infer_modalities(items)}
    assert specs == {"title": "text", "vis": "scores"}
    mat, mask = score_matrix(items, "vis", TAGS)
    np.testing.assert_allclose(mat, [[0.1, 0.8, 0.3], [0.9, 0, 0.2], [0, 0, 0]], atol=1e-6)
    assert mask.tolist() == [True, True, False]
    # a round trip through write_manifest keeps both forms
    write_manifest(items, tmp_path / "copy.jsonl")
    again = read_items(tmp_path / "copy.jsonl")
    np.testing.assert_array_equal(score_matrix(again, "vis", TAGS)[0], mat)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"vis": {"car": 1.5}}, "scores.vis.car: expected a probability in [0, 1]"),
        ({"vis": {"car": "high"}}, "scores.vis.car"),
        ({"vis": 3}, "scores.vis: expected a .npy path"),
        (["vis"], "field 'scores' must map"),
    ],
)
def test_manifest_bad_scores_name_line_and_field(tmp_path: Path, scores, message: str):
    m = _manifest(tmp_path, [{"id": "a", "tags": ["car"]}, {"id": "b", "tags": ["car"], "scores": scores}])
    with pytest.raises(AdtagError) as exc:
        read_items(m)
    assert "line 2" in str(exc.value) and message in str(exc.value)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([0.1, 0.2], np.float32), "expected 3 scores"),
        (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
        (np.array([0.1, 1.2, 0.2], np.float32), "probabilities in [0, 1]"),
    ],
)
def test_npy_scores_checked_against_the_vocabulary(tmp_path: Path, array: np.ndarray, message: str):
    np.save(tmp_path / "a.npy", array)
    items = read_items(_manifest(tmp_path, [{"id": "a", "scores": {"vis": "a.npy"}}]))
    with pytest.raises(AdtagError) as exc:
        score_matrix(items, "vis", TAGS)
    assert "a.npy" in str(exc.value) and "scores.vis" in str(exc.value) and message in str(exc.value)


def test_unknown_inline_tag_is_an_error(tmp_path: Path):
    items = read_items(_manifest(tmp_path, [{"id": "a", "scores": {"vis": {"boat": 0.5}}}]))
    with pytest.raises(AdtagError, match="unknown tag 'boat'"):
        score_matrix(items, "vis", TAGS)


def test_score_file_matches_ids_drops_mp4_and_counts_the_rest(tmp_path: Path):
    items = read_items(_manifest(tmp_path, [{"id": "a", "tags": ["car"]}, {"id": "b", "tags": ["food"]}]))
    f = _submission(
        tmp_path / "p.json",
        {"a.mp4": {"car": 0.7, "food": 0.1}, "x.mp4": {"car": 0.2}, "y": {"game": 0.3}},
    )
    lines: list[str] = []
    attach_score_files(items, [f"vit={f}"], TAGS, log=lines.append)
    assert len(lines) == 1 and "2 ids of the file are not in the manifest" in lines[0]
    mat, mask = score_matrix(items, "vit", TAGS)
    assert mask.tolist() == [True, False]  # b was not scored: it lacks the modality
    np.testing.assert_allclose(mat[0], [0.7, 0.1, 0.0])


def test_score_file_may_declare_logits(tmp_path: Path):
    items = read_items(_manifest(tmp_path, [{"id": "a", "tags": ["car"]}]))
    f = _submission(tmp_path / "p.json", {"a": {"car": 2.0, "food": -3.0}}, score_type="logits")
    attach_score_files(items, [f"m={f}"], TAGS, log=lambda s: None)
    np.testing.assert_allclose(score_matrix(items, "m", TAGS)[0][0], [1 / (1 + np.exp(-2)), 1 / (1 + np.exp(3)), 0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"a": {"result": [{"labels": ["boat"], "scores": [0.5]}]}}, "entry 'a': labels: unknown tag 'boat'"),
        ({"a": {"result": [{"labels": ["car"], "scores": [1.5]}]}}, "entry 'a': scores: 1.5 for 'car' is outside"),
        ({"a": {"result": [{"labels": ["car"], "scores": [float("nan")]}]}}, "entry 'a': scores: expected finite"),
        ({"a": {"result": [{"labels": ["car", "food"], "scores": [0.5]}]}}, "entry 'a': 'labels' and 'scores'"),
        ({"a": {"labels": ["car"]}}, "entry 'a': expected {'result'"),
        ({"zz": {"result": [{"labels": ["car"], "scores": [0.5]}]}}, "none of its 1 ids is in the manifest"),
        ({"score_type": "odds"}, "'score_type' must be one of"),
    ],
)
def test_bad_score_file_exits_2_naming_file_and_field_and_writes_nothing(
    tmp_path: Path, capsys, content: dict, message: str
):
    rows = [{"id": "a", "tags": ["car"], "text": {"t": "red car"}}, {"id": "b", "tags": ["food"], "text": {"t": "x"}}]
    m = _manifest(tmp_path, rows * 1)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(content), encoding="utf-8")
    good = _submission(tmp_path / "good.json", {"a": {"car": 0.5}})
    out = tmp_path / "model"
    # the good file first: it must not have been applied half-way when the bad one fails
    rc = main(["train", str(m), "--out", str(out), "--scores", f"ok={good}", "--scores", f"m={f}", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and str(f) in err and message in err
    assert not out.exists()


def test_score_option_needs_name_and_path(tmp_path: Path, capsys):
    m = _manifest(tmp_path, [{"id": "a", "tags": ["car"], "text": {"t": "x"}}])
    rc = main(["train", str(m), "--out", str(tmp_path / "o"), "--scores", "just.json", "--quiet"])
    assert rc == 2 and "expected NAME=PRED.json" in capsys.readouterr().err
