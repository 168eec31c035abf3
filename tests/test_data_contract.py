"""The manifest, the TAAC-2021 layout, the vocabulary and their error messages."""

import json
from pathlib import Path

import numpy as np
import pytest

from adtag.data.manifest import load_manifest, read_items, write_manifest
from adtag.data.modalities import infer_modalities, raw_values
from adtag.data.predictions import read_predictions, read_truth, write_predictions
from adtag.data.taac import read_taac
from adtag.data.vocab import Vocabulary
from adtag.errors import AdtagError
from tests.conftest import shared_data


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_manifest_roundtrip_and_modalities(manifest: Path, tmp_path: Path):
    items = read_items(manifest)
    assert len(items) == 90 and items[0].id == "ad000"
    specs = {s.name: s for s in infer_modalities(items)}
    assert specs["ocr"].kind == "text"
    assert specs["frames"].kind == "sequence" and specs["frames"].dim == 12
    assert specs["audio"].kind == "vector"
    assert specs["extra"].columns == ["duration", "width"]
    _, mask = raw_values(items, specs["frames"])
    assert mask.sum() == sum(1 for i in range(90) if i % 5)  # every fifth item lacks frames
    out = tmp_path / "copy" / "m.jsonl"
    write_manifest(items, out)
    again = read_items(out)
    assert [it.features["audio"].resolve() for it in again] == [it.features["audio"].resolve() for it in items]
    assert json.loads(out.read_text().splitlines()[0])["features"]["audio"].startswith("..")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2: not valid JSON"),
        ('{"tags": ["a"]}', "line 2: field 'id' is required"),
        ('{"id": "x", "tags": "a"}', "line 2: field 'tags' must be a list"),
        ('{"id": "x", "colour": 1}', "line 2: unknown field"),
        ('{"id": "x", "extra": {"duration": "long"}}', "line 2: extra.duration must be a finite number"),
        ('{"id": "a"}', "line 2: duplicate id 'a' (first on line 1)"),
    ],
)
def test_manifest_errors_name_the_line(tmp_path: Path, line: str, message: str):
    path = write_lines(tmp_path / "m.jsonl", ['{"id": "a", "tags": ["t"]}', line])
    with pytest.raises(AdtagError) as exc:
        read_items(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_empty_manifest_and_missing_file(tmp_path: Path):
    with pytest.raises(AdtagError, match="empty"):
        read_items(write_lines(tmp_path / "m.jsonl", [""]))
    with pytest.raises(AdtagError, match="not found"):
        read_items(tmp_path / "nope.jsonl")


def test_bad_arrays_are_named(tmp_path: Path):
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan], np.float32))
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2), np.float32))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    for name, msg in [("nan", "NaN"), ("cube", "expected shape"), ("junk", "not a .npy file"), ("gone", "not found")]:
        path = write_lines(tmp_path / f"{name}.jsonl", [json.dumps({"id": "a", "features": {"v": f"{name}.npy"}})])
        items = read_items(path)
        with pytest.raises(AdtagError) as exc:
            spec = infer_modalities(items)[0]
            raw_values(items, spec)
        assert msg in str(exc.value) and "'a'" in str(exc.value)


def test_vocabulary(tmp_path: Path):
    v = Vocabulary.from_file(write_lines(tmp_path / "label_id.txt", ["b\t1", "a\t0"]))
    assert v.tags == ["a", "b"]
    y = v.encode([["b"], ["a", "b"]])
    assert y.tolist() == [[0, 1], [1, 1]]
    with pytest.raises(AdtagError, match="item 'x': tag 'c' is not in the vocabulary"):
        v.encode([["c"]], ids=["x"])


def test_official_taac_vocabulary_and_tags():
    labels = shared_data() / "taac2021" / "labels"
    if not labels.is_dir():
        pytest.skip("../shared/data/taac2021 not present")
    v = Vocabulary.from_file(labels / "label_id.txt")
    assert len(v) == 82
    from adtag.data.taac import read_tagging_info

    info = read_tagging_info(labels / "tagging_info_train5k.txt")
    assert len(info) == 5000
    assert all(t in v.index for tags in info.values() for t in tags)


def make_taac(tmp_path: Path) -> Path:
    """A miniature of the competition layout: feature folders, text JSON, datafile, tagging_info."""
    base = tmp_path / "dataset" / "tagging" / "tagging_dataset_train_5k"
    rng = np.random.default_rng(0)
    blocks, info = [], []
    for i in range(4):
        vid = f"{i:032x}"
        for sub, d in (("video_npy/Youtube8M/tagging", 1024), ("audio_npy/Vggish/tagging", 128)):
            (base / sub).mkdir(parents=True, exist_ok=True)
            np.save(base / sub / f"{vid}.npy", rng.normal(size=(5, d)))
        (base / "text_txt/tagging").mkdir(parents=True, exist_ok=True)
        (base / "text_txt/tagging" / f"{vid}.txt").write_text(
            json.dumps({"video_ocr": "第一行|第二行", "video_asr": "你好|世界"}, ensure_ascii=False), encoding="utf-8"
        )
        rel = "../dataset/tagging/tagging_dataset_train_5k"
        blocks += [
            f"{rel}/video_npy/Youtube8M/tagging/{vid}.npy",
            f"{rel}/audio_npy/Vggish/tagging/{vid}.npy",
            f"{rel}/image_jpg/tagging/{vid}.jpg",
            f"{rel}/text_txt/tagging/{vid}.txt",
            "室内,现代" if i % 2 else "室外",
            "",
        ]
        info.append(f"{vid}.mp4\t{'室内,现代' if i % 2 else '室外'}")
    (tmp_path / "datafile").mkdir()
    write_lines(tmp_path / "datafile" / "train.txt", blocks)
    write_lines(base / "tagging_info.txt", info)
    return tmp_path


def test_taac_layout_datafile_and_folder(tmp_path: Path):
    root = make_taac(tmp_path)
    items = load_manifest(root / "datafile" / "train.txt")
    assert len(items) == 4 and items[1].tags == ["室内", "现代"]
    assert set(items[0].features) == {"frames", "audio"} and items[0].text == {
        "ocr": "第一行\n第二行",
        "asr": "你好\n世界",
    }
    folder = read_taac(root / "dataset" / "tagging" / "tagging_dataset_train_5k")
    assert sorted(it.id for it in folder) == sorted(it.id for it in items)
    assert {s.name: s.kind for s in infer_modalities(items)} == {
        "ocr": "text",
        "asr": "text",
        "frames": "sequence",
        "audio": "sequence",
    }


def test_taac_real_vit_features_load():
    feats = sorted((shared_data() / "taac2021" / "features_vitl16").glob("*.npy"))
    if not feats:
        pytest.skip("../shared/data/taac2021/features_vitl16 not present")
    from adtag.data.manifest import Item

    items = [Item(id=p.stem, features={"frames": p}) for p in feats]
    spec = infer_modalities(items)[0]
    assert spec.kind == "sequence" and spec.dim == 1024
    arrays, mask = raw_values(items, spec)
    assert mask.all() and all(a.dtype == np.float32 and 15 <= a.shape[0] <= 59 for a in arrays)


def test_predictions_and_truth_formats(tmp_path: Path):
    pred = tmp_path / "p.json"
    write_predictions(pred, ["a", "b"], np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.1]]), ["x", "y", "z"], top_k=2)
    obj = json.loads(pred.read_text())
    assert obj["a"]["result"][0]["labels"] == ["y", "z"]
    assert read_predictions(pred)["b"][0] == ("x", 0.7)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"a.mp4": {"annotations": [{"labels": ["y"]}]}}))
    assert read_truth(gt) == {"a": ["y"]}
    (tmp_path / "bad.json").write_text('{"a": {"result": [{"labels": ["x"]}]}}')
    with pytest.raises(AdtagError, match="entry 'a'"):
        read_predictions(tmp_path / "bad.json")
