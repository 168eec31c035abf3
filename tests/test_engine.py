"""Training, prediction, persistence and the CLI's handling of bad input, end to end."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adtag.cli import main
from adtag.data.manifest import read_items
from adtag.metrics import gap_at_k
from adtag.models.tagger import Tagger, TrainConfig
from adtag.tagging import explain_items
from tests.conftest import make_manifest


def test_train_predict_evaluate_cli(trained, tmp_path: Path, capsys):
    manifest, model = trained
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["config"]["fusion"] == "stack" and cfg["config"]["folds"] == 3
    assert set(cfg["metrics"]["branch_oof_gap"]) >= {"ocr/lr", "ocr/svm", "frames/lr", "audio/mlp", "joint/lr"}
    assert not list(model.glob("*.pkl")) and (model / "weights.safetensors").is_file()
    holdout = make_manifest(tmp_path / "new", n=60, seed=7)  # same generator, unseen items
    pred = tmp_path / "pred.json"
    assert main(["predict", str(model), str(holdout), "--out", str(pred), "--top-k", "3"]) == 0
    obj = json.loads(pred.read_text())
    assert len(obj) == 60 and all(len(v["result"][0]["labels"]) == 3 for v in obj.values())
    capsys.readouterr()
    assert main(["evaluate", str(pred), str(holdout), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_items"] == 60 and 0.7 < res["gap"] <= 1.0  # 6 tags, chance is about 0.35
    assert set(res["per_tag_ap"]) <= {"beach", "city", "food", "car", "music", "sport"}


def test_stacker_beats_its_inputs_on_held_out_items(trained, tmp_path: Path):
    manifest, model = trained
    tagger = Tagger.load(model)
    items = read_items(make_manifest(tmp_path / "new", n=150, seed=11))
    y = tagger.vocab_.encode([it.tags for it in items])
    mf = tagger.meta_features(items)
    P, present = mf.P, mf.present
    stack = gap_at_k(tagger.predict_proba(items), y)
    names = [b.name for b in tagger.branch_specs()]
    for b, name in enumerate(names):
        rows = present[:, b]
        if name.startswith("extra"):
            continue  # extras carry no tag signal in this generator
        assert stack >= gap_at_k(P[rows, b], y[rows]) - 0.02, name


def test_reload_gives_identical_scores(trained):
    manifest, model = trained
    items = read_items(manifest)[:20]
    a = Tagger.load(model).predict_proba(items)
    b = Tagger.load(model).predict_proba(items)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_explain_lists_branch_shares(trained):
    manifest, model = trained
    tagger = Tagger.load(model)
    rows = explain_items(tagger, read_items(manifest)[:2], top_k=3)[0]
    assert len(rows) == 3 and rows[0].score >= rows[1].score
    shares = [b.share for b in rows[0].branches.values()]
    assert shares and sum(shares) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("fusion", ["mean", "paper", "concat", "attention"])
def test_every_fusion_trains_saves_and_predicts(manifest: Path, tmp_path: Path, fusion: str):
    items = read_items(manifest)
    t = Tagger(TrainConfig(fusion=fusion, folds=2)).fit(items, progress=False, log=lambda *_: None)
    t.save(tmp_path / "m")
    again = Tagger.load(tmp_path / "m")
    np.testing.assert_allclose(t.predict_proba(items[:10]), again.predict_proba(items[:10]), rtol=1e-5, atol=1e-6)
    y = t.vocab_.encode([it.tags for it in items])
    assert gap_at_k(again.predict_proba(items), y) > 0.6


def test_rerun_reuses_cached_branches(manifest: Path, tmp_path: Path, capsys):
    out = tmp_path / "model"
    assert main(["train", str(manifest), "--out", str(out), "--folds", "2", "--quiet"]) == 0
    first = json.loads((out / "config.json").read_text())["metrics"]
    assert first["branches_cached"] is False
    assert main(["train", str(manifest), "--out", str(out), "--folds", "2", "--fusion", "paper", "--quiet"]) == 0
    second = json.loads((out / "config.json").read_text())
    assert second["metrics"]["branches_cached"] is True and second["config"]["fusion"] == "paper"
    assert second["metrics"]["branch_oof_gap"] == first["branch_oof_gap"]
    # a different fold count invalidates the cache
    assert main(["train", str(manifest), "--out", str(out), "--folds", "3", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["metrics"]["branches_cached"] is False


def _run_err(args, capsys) -> str:
    code = main(args)
    assert code == 2
    return capsys.readouterr().err


def test_bad_training_input_exits_2_and_keeps_old_model(trained, tmp_path: Path, capsys):
    manifest, model = trained
    out = tmp_path / "model"
    shutil.copytree(model, out)
    before = (out / "weights.safetensors").read_bytes()
    bad = make_manifest(tmp_path / "bad", n=30, with_nan=True)
    err = _run_err(["train", str(bad), "--out", str(out), "--quiet"], capsys)
    assert "NaN" in err and "v0.npy" in err
    empty_tags = tmp_path / "e.jsonl"
    empty_tags.write_text('{"id": "a", "tags": []}\n{"id": "b", "tags": ["x"]}\n')
    assert "tags on every item" in _run_err(["train", str(empty_tags), "--out", str(out)], capsys)
    vocab = tmp_path / "v.txt"
    vocab.write_text("beach\t0\n")
    assert "not in the vocabulary" in _run_err(
        ["train", str(manifest), "--out", str(out), "--vocab", str(vocab)], capsys
    )
    assert (out / "weights.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_damaged_model_folder_exits_2(trained, tmp_path: Path, capsys):
    manifest, model = trained
    for damage in ("truncate", "edit", "remove"):
        broken = tmp_path / damage
        shutil.copytree(model, broken)
        if damage == "truncate":
            data = (broken / "weights.safetensors").read_bytes()
            (broken / "weights.safetensors").write_bytes(data[: len(data) // 2])
        elif damage == "edit":
            cfg = json.loads((broken / "config.json").read_text())
            cfg["branches"].append("nosuch/lr")
            cfg["modalities"][0]["kind"] = "vector"
            (broken / "config.json").write_text(json.dumps(cfg))
        else:
            (broken / "config.json").unlink()
        err = _run_err(["predict", str(broken), str(manifest), "--out", str(tmp_path / "p.json")], capsys)
        assert str(broken) in err
        assert not (tmp_path / "p.json").exists()


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "predict", "evaluate", "ablate", "extract"):
        assert cmd in out
