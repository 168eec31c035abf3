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
from adtag.tagging import explain_items

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


# ---------------------------------------------------------------- scores at level 2


def _scored_manifest(tmp_path: Path, n: int = 80, in_sample: bool = False) -> tuple[Path, Path]:
    """A generated manifest (text, vectors, extras) and a TAAC file of one external model's scores.

    The external model is good but imperfect (out-of-sample), or the truth itself (in-sample).
    """
    from tests.conftest import TAGS as GEN_TAGS
    from tests.conftest import make_manifest

    m = make_manifest(tmp_path / "data", n=n, seed=3)
    rng = np.random.default_rng(7)
    rows = {}
    for it in read_items(m):
        y = np.array([t in it.tags for t in GEN_TAGS], float)
        s = y if in_sample else np.clip(0.3 * y + 0.7 * rng.random(len(GEN_TAGS)), 0, 1)
        if in_sample or rng.random() < 0.9:  # the model did not score every item
            rows[f"{it.id}.mp4"] = dict(zip(GEN_TAGS, s.round(4).tolist(), strict=True))
    rows["not_in_manifest.mp4"] = {GEN_TAGS[0]: 0.5}
    return m, _submission(tmp_path / "vis.json", rows)


def test_scores_pass_through_to_level_2(tmp_path: Path):
    from adtag.data.scores import attach_score_files
    from adtag.models.tagger import Tagger, TrainConfig

    m, f = _scored_manifest(tmp_path)
    items = read_items(m)
    attach_score_files(items, [f"vis={f}"], None, log=lambda s: None)
    logs: list[str] = []
    t = Tagger(TrainConfig(folds=3, jobs=1)).fit(items, progress=False, log=logs.append)
    mf = t.meta_features_
    b = mf.branches.index("vis/scores")
    assert not any(name.startswith("vis/") and name != "vis/scores" for name in mf.branches)
    expect, mask = score_matrix(items, "vis", t.vocab_.tags)
    np.testing.assert_array_equal(mf.present[:, b], mask)
    np.testing.assert_allclose(mf.P[mask, b], expect[mask], atol=1e-6)  # out-of-fold = the scores themselves
    assert not any("warning" in line for line in logs)
    # the early-fusion branch does not see the scores: same width as without them
    plain = Tagger(TrainConfig(folds=3, jobs=1)).fit(read_items(m), progress=False, log=lambda *_: None)
    width = {s: t.branches_["joint/lr"][0].coef_.shape for s in ("with",)}["with"]
    assert width == plain.branches_["joint/lr"][0].coef_.shape
    # explanations list the external model beside the branches
    rows = explain_items(t, items[:3], top_k=2)
    assert any("vis/scores" in r.branches for item in rows for r in item)
    # save / load round trip gives identical scores
    t.save(tmp_path / "model")
    again = Tagger.load(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(items), t.predict_proba(items), atol=1e-6)


def test_in_sample_scores_warn(tmp_path: Path):
    from adtag.data.scores import attach_score_files
    from adtag.models.tagger import Tagger, TrainConfig

    m, f = _scored_manifest(tmp_path, in_sample=True)
    items = read_items(m)
    attach_score_files(items, [f"vis={f}"], None, log=lambda s: None)
    logs: list[str] = []
    Tagger(TrainConfig(folds=2, jobs=1, fusion="mean")).fit(items, progress=False, log=logs.append)
    warned = [line for line in logs if "warning" in line]
    assert len(warned) == 1 and "'vis'" in warned[0] and "out-of-sample" in warned[0]


def test_cli_train_predict_ablate_with_scores(tmp_path: Path, capsys):
    m, f = _scored_manifest(tmp_path, n=60)
    rc = main(["train", str(m), "--out", str(tmp_path / "model"), "--folds", "2", "--scores", f"vis={f}", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "1 ids of the file are not in the manifest" in out
    pred = tmp_path / "pred.json"
    rc = main(["predict", str(tmp_path / "model"), str(m), "--out", str(pred), "--scores", f"vis={f}"])
    assert rc == 0 and len(json.loads(pred.read_text())) == 60
    rc = main(
        ["ablate", str(m), "--out", str(tmp_path / "abl"), "--folds", "2", "--inner-folds", "2", "--quiet"]
        + ["--scores", f"vis={f}", "--fusions", "stack,mean"]
    )
    assert rc == 0
    res = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert "vis" in [r["name"] for r in res["tables"]["single"]]
    # the service's JSON input takes the same scores
    from adtag.serve.errors import ApiError
    from adtag.serve.schemas import TagRequest
    from adtag.serve.service import ServeConfig, TaggingService

    svc = TaggingService(ServeConfig(tmp_path / "model", warm=False))
    try:
        tags = svc.tagger.vocab_.tags
        item, _ = svc.item_from_request(TagRequest(id="x", scores={"vis": {tags[0]: 0.9}}))
        assert item.scores["vis"].shape == (len(tags),) and item.scores["vis"][0] == np.float32(0.9)
        top, _decided = svc.explain([item], 3)[0]
        assert "vis/scores" in top[0].branches
        with pytest.raises(ApiError, match="unknown tag 'boat'"):
            svc.item_from_request(TagRequest(id="x", scores={"vis": {"boat": 0.5}}))
        with pytest.raises(ApiError, match="unknown score modality"):
            svc.item_from_request(TagRequest(id="x", scores={"nosuch": [0.5]}))
    finally:
        svc.close()


# ---------------------------------------------------------------- the stacker's promise


def _complementary(n: int, seed: int, L: int = 24, B: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """B models, each strong on its own third of the tags and weak elsewhere, and the truth."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < 0.15).astype(np.float32)
    P = np.zeros((n, B, L), np.float32)
    for b in range(B):
        strength = np.where(np.arange(L) % B == b, 3.0, 0.6)
        logit = strength * (2 * Y - 1) + rng.normal(size=(n, L)) * 1.5 + rng.normal(scale=0.5)
        P[:, b] = 1 / (1 + np.exp(-logit))
    return P, Y


@pytest.mark.parametrize("n", [150, 600])
def test_stacker_never_loses_to_averaging_on_complementary_scores(n: int):
    from adtag.metrics import gap_at_k
    from adtag.models.base import from_record, to_record
    from adtag.models.fusions import mean_fusion
    from adtag.models.meta_features import MetaFeatures
    from adtag.models.stacker import Stacker

    P, Y = _complementary(n + 400, seed=n)
    present = np.ones(P.shape[:2], bool)
    names, ex = ["a", "b", "c"], np.zeros((len(Y), 0), np.float32)
    tr, te = slice(0, n), slice(n, None)
    st = Stacker(seed=0).fit(MetaFeatures(P[tr], present[tr], names, ex[tr]), Y[tr])
    mf_te = MetaFeatures(P[te], present[te], names, ex[te])
    stack = gap_at_k(st.predict_proba(mf_te), Y[te])
    mean = gap_at_k(mean_fusion(P[te], present[te]), Y[te])
    best = max(gap_at_k(P[te, b], Y[te]) for b in range(3))
    assert stack >= mean - 0.005 and stack >= best - 0.005, (st.chosen_, stack, mean, best)
    assert set(st.cv_gap_) == {"mean", "linear", "net"} and st.chosen_ in st.cv_gap_
    # round trip through arrays + JSON restores the same scores, whichever rung was chosen
    arrays, record = to_record(st)
    again = from_record(json.loads(json.dumps(record)), arrays)
    np.testing.assert_allclose(again.predict_proba(mf_te), st.predict_proba(mf_te), atol=1e-6)
