"""Likely typos in a manifest: rare modality, extra-field and tag names, reported by line."""

from __future__ import annotations

import json
from pathlib import Path

from adtag.cli import main
from adtag.data.manifest import read_items
from adtag.data.typos import check_names, rare_names
from tests.conftest import make_manifest


def _with_typos(root: Path) -> Path:
    path = make_manifest(root, n=60)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[1])  # line 2: an item with features
    first["features"]["frmes"] = first["features"].pop("audio")
    lines[1] = json.dumps(first, ensure_ascii=False)
    extra = [
        {"id": "t1", "tags": ["beach", "室内/indor"], "text": {"ocr": "sun"}, "extra": {"duraton": 3.0}},
        {"id": "t2", "tags": ["室内/indoor"], "text": {"ocr": "home"}},
    ]
    extra += [{"id": f"in{i}", "tags": ["室内/indoor", "city"], "text": {"ocr": "room"}} for i in range(6)]
    path.write_text("\n".join(lines + [json.dumps(x, ensure_ascii=False) for x in extra]) + "\n", encoding="utf-8")
    return path


def test_a_clean_manifest_has_no_rare_names(tmp_path: Path) -> None:
    path = make_manifest(tmp_path / "d", n=60)
    assert check_names(read_items(path), path) == []


def test_rare_names_are_named_with_their_lines_and_the_closest_known_name(tmp_path: Path) -> None:
    path = _with_typos(tmp_path / "d")
    warnings: list[str] = []
    found = check_names(read_items(path), path, warn=warnings.append)
    got = {(r.kind, r.name): (r.places, r.closest) for r in found}
    assert got[("modality", "frmes")] == (["line 2"], "frames")
    assert got[("tag", "室内/indor")] == (["line 61"], "室内/indoor")
    assert got[("extra field", "duraton")] == (["line 61"], "duration")
    assert ("tag", "室内/indoor") not in got  # used by 7 items: a real tag
    text = "\n".join(warnings)
    assert "modality 'frmes' is used by only 1 item (line 2); did you mean 'frames'?" in text
    assert "--strict" in text


def test_a_vocabulary_makes_its_tags_known(tmp_path: Path) -> None:
    path = _with_typos(tmp_path / "d")
    found = rare_names(read_items(path), known_tags=["室内/indor", "beach"])
    assert ("tag", "室内/indor") not in {(r.kind, r.name) for r in found}


def test_strict_makes_typos_an_error_before_training(tmp_path: Path, capsys) -> None:
    path = _with_typos(tmp_path / "d")
    out = tmp_path / "model"
    assert main(["train", str(path), "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "possible typos (--strict)" in err and "line 2" in err and "'frames'" in err
    assert not out.exists()
