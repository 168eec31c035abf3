"""train --decide, predict --decide, evaluate with decisions and a taxonomy, audit, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adtag.cli import main

TAXONOMY = "tag,group,parent\nbeach,place\ncity,place\nfood,thing\ncar,thing\nmusic,mood\nsport,mood\n"


@pytest.fixture(scope="module")
def decided_model(trained, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The session's model retrained with --decide (its branches are reused from the cache)."""
    manifest, model = trained
    root = tmp_path_factory.mktemp("decide")
    out = root / "model"
    shutil.copytree(model, out)
    tax = root / "tax.csv"
    tax.write_text(TAXONOMY, encoding="utf-8")
    argv = ["train", str(manifest), "--out", str(out), "--folds", "3", "--quiet", "--decide", "f1"]
    assert main(argv + ["--taxonomy", str(tax), "--per-group-max", "1"]) == 0
    return manifest, out, tax


def test_train_decide_stores_the_layer(decided_model):
    _, model, _ = decided_model
    meta = json.loads((model / "decisions.json").read_text(encoding="utf-8"))
    assert meta["thresholds"]["goal"] == "f1"
    assert meta["rules"]["per_group_max"] == 1 and meta["rules"]["taxonomy"]["group"]["beach"] == "place"
    assert len(meta["oof_ids"]) == 120
    assert meta["metrics"]["oof_ece_after"] <= meta["metrics"]["oof_ece_before"] + 1e-9
    assert len(meta["refits"]) == 3, "the layer keeps the K stackers refitted for its out-of-fold scores"


def test_predict_decide_then_evaluate(decided_model, tmp_path, capsys):
    manifest, model, tax = decided_model
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(manifest), "--out", str(out), "--decide"]) == 0
    preds = json.loads(out.read_text(encoding="utf-8"))
    groups = {"beach": "place", "city": "place", "food": "thing", "car": "thing", "music": "mood", "sport": "mood"}
    for entry in preds.values():
        res = entry["result"][0]
        assert res["decided"], "every item gets at least one tag"
        assert set(res["decided"]) <= set(res["labels"])
        per_group = [groups[t] for t in res["decided"]]
        assert len(per_group) == len(set(per_group)), "--per-group-max 1 kept"
    # The tags are decided on the layer's refits' mean score, the ranking is the final stacker's.
    from adtag.data.manifest import load_manifest
    from adtag.decisions.fit import scores_for_decisions
    from adtag.models.tagger import Tagger

    tagger, items = Tagger.load(model), load_manifest(manifest)
    ranked, decide_on = scores_for_decisions(tagger, items)
    np.testing.assert_allclose(ranked, tagger.predict_proba(items), rtol=1e-6)
    decided = tagger.decider_.decide(decide_on)[1]
    for i, it in enumerate(items):
        res = (preds.get(it.id) or preds[it.id + ".mp4"])["result"][0]
        assert set(res["decided"]) == {tagger.vocab_.tags[j] for j in np.flatnonzero(decided[i])}
    capsys.readouterr()
    assert main(["evaluate", str(out), str(manifest), "--json", "--taxonomy", str(tax)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0.5 < res["decisions"]["micro_f1"] <= 1.0
    assert set(res["per_group"]) == {"place", "thing", "mood"}
    assert all(0 <= row["gap"] <= 1 and "micro_f1" in row for row in res["per_group"].values())

    # Another goal at prediction time, without retraining: fewer, surer tags (same rules: none).
    def count(goal: str) -> int:
        path = tmp_path / f"{goal}.json"
        argv = ["predict", str(model), str(manifest), "--out", str(path), "--decide", goal]
        assert main(argv + ["--per-group-max", "0", "--min-tags", "0"]) == 0
        return sum(len(e["result"][0]["decided"]) for e in json.loads(path.read_text(encoding="utf-8")).values())

    assert count("precision=0.95") < count("f1") < count("recall=0.99")


def test_audit_ranks_a_flipped_label(decided_model, tmp_path):
    manifest, model, _ = decided_model
    out = tmp_path / "audit.csv"
    assert main(["audit", str(model), str(manifest), "--out", str(out), "--top", "30"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert 0 < len(rows) <= 30
    assert {r["kind"] for r in rows} <= {"likely wrong", "likely missing"}
    assert [float(r["suspicion"]) for r in rows] == sorted((float(r["suspicion"]) for r in rows), reverse=True)
    assert all(r["evidence"] for r in rows)
    page = out.with_suffix(".html").read_text(encoding="utf-8")
    assert "Label audit" in page and rows[0]["item"] in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--decide", "precision=1.2"], "impossible target"),
        (["--decide", "f2"], "expected f1, precision=P or recall=R"),
    ],
)
def test_bad_decide_exits_2(trained, tmp_path, capsys, extra, message):
    manifest, _ = trained
    # Rejected while parsing the options, before any training: argparse exits 2 naming the option.
    with pytest.raises(SystemExit) as exc:
        main(["train", str(manifest), "--out", str(tmp_path / "m")] + extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--decide" in err and message in err
    assert not (tmp_path / "m").exists()


def test_per_group_maximum_per_group_on_the_command_line(decided_model, tmp_path, capsys):
    """``--per-group-max N`` or ``GROUP=N,...`` (a plain N for the groups not named); a bad token or a
    group the taxonomy lacks is exit 2 naming it (and the known groups)."""
    manifest, model, tax = decided_model
    out = tmp_path / "p.json"
    argv = ["predict", str(model), str(manifest), "--out", str(out), "--decide", "recall=0.99", "--min-tags", "0"]
    groups = {"beach": "place", "city": "place", "food": "thing", "car": "thing", "music": "mood", "sport": "mood"}

    def per_group(spec: str) -> list[dict[str, int]]:
        assert main(argv + ["--per-group-max", spec]) == 0
        rows = []
        for e in json.loads(out.read_text(encoding="utf-8")).values():
            n: dict[str, int] = {}
            for t in e["result"][0]["decided"]:
                n[groups[t]] = n.get(groups[t], 0) + 1
            rows.append(n)
        return rows

    uncapped = per_group("0")
    assert any(r.get("place", 0) == 2 for r in uncapped) and any(r.get("mood", 0) == 2 for r in uncapped)
    capped = per_group("place=1")
    assert all(r.get("place", 0) <= 1 for r in capped)
    assert any(r.get("mood", 0) == 2 for r in capped), "groups not named keep no cap"
    capped = per_group("1,mood=0")
    assert all(r.get("place", 0) <= 1 and r.get("thing", 0) <= 1 for r in capped)
    assert any(r.get("mood", 0) == 2 for r in capped), "mood=0: no cap"
    capsys.readouterr()
    assert main(argv + ["--per-group-max", "places=1"]) == 2
    err = capsys.readouterr().err
    assert "--per-group-max: no group 'places'" in err and "groups: place, thing, mood" in err
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--per-group-max", "place=one"])
    assert exc.value.code == 2
    assert "--per-group-max" in (err := capsys.readouterr().err) and "'place=one'" in err


def test_decide_with_a_feature_fusion_network(trained, tmp_path, capsys):
    """train --fusion concat --decide f1: the network is refitted K-fold on the training features, so
    every training item's stored score comes from a network that never saw it; then predict --decide."""
    from adtag.models.tagger import Tagger

    manifest, _ = trained
    model = tmp_path / "m"
    argv = ["train", str(manifest), "--out", str(model), "--quiet", "--folds", "3", "--fusion", "concat"]
    assert main(argv + ["--decide", "f1"]) == 0
    assert "decisions (f1): out-of-fold ECE" in capsys.readouterr().out
    meta = json.loads((model / "decisions.json").read_text(encoding="utf-8"))
    assert meta["thresholds"]["goal"] == "f1" and len(meta["oof_ids"]) == 120
    with np.load(model / "decisions.npz", allow_pickle=False) as z:
        oof, truth = z["oof_scores"], z["oof_truth"]
    tagger = Tagger.load(model)
    assert tagger.config.fusion == "concat" and tagger.decider_ is not None and len(tagger.decider_.refits) == 3
    from adtag.data.manifest import load_manifest

    items = {it.id: it for it in load_manifest(manifest)}
    in_sample = tagger.predict_proba([items[i] for i in meta["oof_ids"]])
    # Out-of-fold, not the final network's in-sample scores: those fit the training labels better.
    assert oof.shape == in_sample.shape and np.abs(oof - in_sample).max() > 0.05
    bce = lambda s: -np.mean(truth * np.log(s + 1e-7) + (1 - truth) * np.log(1 - s + 1e-7))  # noqa: E731
    assert bce(in_sample) < bce(oof)

    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(manifest), "--out", str(out), "--decide"]) == 0
    preds = json.loads(out.read_text(encoding="utf-8"))
    assert len(preds) == 120
    for entry in preds.values():
        res = entry["result"][0]
        assert res["decided"], "every item gets at least one tag under f1"
        assert set(res["decided"]) <= set(res["labels"])
    capsys.readouterr()
    assert main(["evaluate", str(out), str(manifest), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0.5 < res["decisions"]["micro_f1"] <= 1.0


def test_per_group_minimum_per_group_on_the_command_line(decided_model, tmp_path, capsys):
    manifest, model, tax = decided_model
    out = tmp_path / "p.json"
    argv = ["predict", str(model), str(manifest), "--out", str(out), "--decide", "precision=0.98"]
    argv += ["--min-tags", "0", "--per-group-max", "0"]
    assert main(argv + ["--per-group-min", "mood=1,place=0"]) == 0
    groups = {"beach": "place", "city": "place", "food": "thing", "car": "thing", "music": "mood", "sport": "mood"}
    decided = [e["result"][0]["decided"] for e in json.loads(out.read_text(encoding="utf-8")).values()]
    assert all(any(groups[t] == "mood" for t in d) for d in decided), "every item has a mood tag"
    assert any(not any(groups[t] == "place" for t in d) for d in decided), "place is not forced"
    capsys.readouterr()
    assert main(argv + ["--per-group-min", "moods=1"]) == 2
    assert "--per-group-min: no group 'moods'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--per-group-min", "mood=-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "narrative=0,scene=1" in capsys.readouterr().out


def test_taxonomy_with_an_unknown_tag_exits_2(decided_model, tmp_path, capsys):
    manifest, model, _ = decided_model
    tax = tmp_path / "bad.csv"
    tax.write_text("beach,place\nvolcano,place\n", encoding="utf-8")
    argv = ["predict", str(model), str(manifest), "--out", str(tmp_path / "p.json"), "--decide"]
    assert main(argv + ["--taxonomy", str(tax)]) == 2
    assert "bad.csv:2: unknown tag 'volcano'" in capsys.readouterr().err


def test_audit_needs_the_decision_layer(trained, tmp_path, capsys):
    manifest, model = trained
    assert main(["audit", str(model), str(manifest), "--out", str(tmp_path / "a.csv")]) == 2
    assert "train --decide" in capsys.readouterr().err


def test_loaded_tagger_carries_its_decisions(decided_model, trained):
    from adtag.commands.tag import format_result
    from adtag.data.manifest import load_manifest
    from adtag.decisions.decider import decided_fields
    from adtag.models.tagger import Tagger

    manifest, model, _ = decided_model
    items = load_manifest(manifest)[:5]
    rows = decided_fields(Tagger.load(model), items)
    assert all(r["decided"] and {"tag", "score"} <= set(r["decided"][0]) for r in rows)
    assert decided_fields(Tagger.load(trained[1]), items) == [{}] * 5
    res = {"video": "v.mp4", "modalities": ["ocr"], "tags": [], "text": {}, **rows[0]}
    assert f"decided: {rows[0]['decided'][0]['tag']}" in format_result(res)


def test_audit_page_shows_thumbnails_when_videos_are_at_hand(decided_model, tmp_path):
    from tests.clips import make_clip

    manifest, model, _ = decided_model
    make_clip(manifest.parent / "clip.mp4", seconds=1.0, width=160, height=120, audio=None)
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    with_video = manifest.parent / "manifest_video.jsonl"
    with_video.write_text("".join(json.dumps({**d, "video": "clip.mp4"}) + "\n" for d in lines), encoding="utf-8")
    out = tmp_path / "audit.csv"
    assert main(["audit", str(model), str(with_video), "--out", str(out), "--top", "3"]) == 0
    page = out.with_suffix(".html").read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") >= 3
    assert all(r["video"].endswith("clip.mp4") for r in csv.DictReader(out.open(encoding="utf-8")))


def test_ablate_with_a_taxonomy_adds_group_tables(manifest, tmp_path, capsys):
    tax = tmp_path / "tax.csv"
    tax.write_text(TAXONOMY, encoding="utf-8")
    out = tmp_path / "abl"
    argv = ["ablate", str(manifest), "--out", str(out), "--folds", "2", "--inner-folds", "2", "--fusions", "mean"]
    assert main(argv + ["--taxonomy", str(tax), "--quiet"]) == 0
    table = (out / "ablation_groups.md").read_text(encoding="utf-8")
    assert "| row | place | thing | mood |" in table and "fusion:mean" in table
    res = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    assert 0 < res["per_group"]["fusion:mean"]["place"]["gap"] <= 1
    bad = tmp_path / "bad.csv"
    bad.write_text("beach,place\nbeach,mood\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(argv + ["--taxonomy", str(bad)])
    assert "bad.csv:2: tag 'beach' is in two groups" in capsys.readouterr().err


def test_service_answers_decided_tags_and_review_band(decided_model, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from adtag.data.manifest import load_manifest
    from adtag.serve import ServeConfig, TaggingService, create_app

    manifest, model, _ = decided_model
    item = load_manifest(manifest)[0]
    body = {"id": item.id, "text": item.text, "extra": item.extra}
    body["features"] = {k: np.load(v).tolist() for k, v in item.features.items()}
    svc = TaggingService(ServeConfig(model, workers=1, queue=1, tmp_dir=tmp_path, warm=False))
    try:
        with TestClient(create_app(svc.config, svc)) as client:
            r = client.post("/v1/tag", json=body)
    finally:
        svc.close()
    assert r.status_code == 200, r.text
    res = r.json()
    assert isinstance(res["decided"], list) and isinstance(res["review"], list)
    assert res["decided"], "--decide f1 keeps at least one tag per item"
    ranked = {t["tag"] for t in res["tags"]}
    assert {d["tag"] for d in res["decided"]} <= set(json.loads((model / "config.json").read_text())["tags"])
    assert ranked
