"""``adtag extract`` end to end: the manifest contract, bad inputs, resuming after kill -9, offline."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adtag.commands.extract import main as extract_main
from adtag.data.manifest import Item, read_items, write_manifest
from adtag.errors import AdtagError
from adtag.features.extract import DEFAULT_ENCODERS, extract_to_dir, extract_video
from adtag.features.inputs import discover_inputs
from adtag.features.store import manifest_encoders
from tests.clips import make_audio_file, make_clip, tone, truncate

ROOT = Path(__file__).resolve().parent.parent
EXTRA_KEYS = {"duration", "width", "height", "fps", "rotation", "has_audio", "has_video"}


@pytest.fixture(scope="module")
def ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ad") / "ad.mp4"
    return make_clip(
        path, seconds=3.0, width=480, height=270, fps=10, captions=[(0, 1.5, "SUMMER SALE"), (1.5, 3, "FREE DELIVERY")]
    )


def test_extract_video_returns_in_memory_features_and_timings(ad: Path) -> None:
    timings: dict = {}
    item = extract_video(ad, timings=timings)
    assert isinstance(item, Item) and item.id == "ad"
    assert item.features["frames"].shape == (6, 1280)
    assert item.features["audio"].shape == (4, 512)
    assert item.features["ocr_emb"].shape == (384,)
    assert "asr" not in item.text and "asr_emb" not in item.features  # a tone has no speech
    assert item.text["ocr"].replace(" ", "") == "SUMMERSALEFREEDELIVERY"
    assert set(item.extra) == EXTRA_KEYS and item.extra["duration"] == pytest.approx(3.0, abs=0.1)
    assert all(a.dtype == np.float32 for a in item.features.values())
    assert timings["frames"] == 6 and 1 <= timings["ocr_frames"] <= 6
    assert {"decode", "visual", "ocr", "audio", "asr", "text"} <= set(timings)


def _bad_folder(folder: Path, good: Path) -> dict[str, str]:
    """Every kind of bad input the issue lists (the 4K and 10-minute ones are in test_media)."""
    folder.mkdir()
    (folder / "good.mp4").write_bytes(good.read_bytes())
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("not a video at all\n")
    truncate(good, folder / "cut.mp4", 0.4)
    make_clip(folder / "silent.mp4", seconds=1.0, audio=None)
    make_audio_file(folder / "radio.m4a", tone(2.0))
    make_clip(folder / "still.mp4", frames=1, audio=None)
    make_clip(folder / "phone.mp4", seconds=1.0, width=96, height=64, rotation=90)
    return {"empty": "empty file", "notes": "not a readable", "cut": "not a readable"}


def test_folder_with_bad_inputs_yields_items_and_recorded_failures(
    ad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = _bad_folder(tmp_path / "in", ad)
    out = tmp_path / "feats"
    code = extract_main([str(tmp_path / "in"), "--out", str(out), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    for name, reason in failing.items():
        assert f"{name}.mp4: {reason}" in err
    items = {it.id: it for it in read_items(out / "manifest.jsonl")}
    assert set(items) == {"good", "silent", "radio", "still", "phone"}
    assert set(items["silent"].features) == {"frames"} and items["silent"].extra["has_audio"] == 0
    assert set(items["radio"].features) == {"audio"} and items["radio"].extra["has_video"] == 0
    assert np.load(items["still"].features["frames"]).shape == (1, 1280)
    assert items["phone"].extra["rotation"] == 90 and items["phone"].extra["width"] == 64
    good = items["good"]
    assert set(good.features) == {"frames", "audio", "ocr_emb"} and set(good.extra) == EXTRA_KEYS
    for name, path in good.features.items():
        arr = np.load(path)
        assert arr.dtype == np.float32 and arr.shape[-1] == {"frames": 1280, "audio": 512, "ocr_emb": 384}[name]
    # Re-running does nothing new: every video is in the journal, failures included.
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 8
    assert extract_main([str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 1
    assert (out / "journal.jsonl").read_text().splitlines() == journal


def test_manifest_input_carries_tags_and_reports_items_without_video(ad: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    first = Item(id="x1", tags=["food", "sale"], video=ad, scores={"ext": {"food": 0.8, "sale": 0.3}})
    write_manifest([first, Item(id="x2", tags=["food"])], src)
    manifest, failures = extract_to_dir(
        discover_inputs([src]), tmp_path / "f", progress=False, encoders=["audio=none,asr=none"]
    )
    assert [f.id for f in failures] == ["x2"] and "no 'video'" in failures[0].reason
    assert manifest_encoders(manifest) == {k: v for k, v in DEFAULT_ENCODERS.items() if k not in ("audio", "asr")}
    (item,) = read_items(manifest)
    assert item.id == "x1" and item.tags == ["food", "sale"] and "audio" not in item.features
    assert item.scores == {"ext": {"food": 0.8, "sale": 0.3}}  # an external model's scores survive extraction
    with pytest.raises(AdtagError, match="other settings"):
        extract_to_dir(discover_inputs([src]), tmp_path / "f", progress=False)  # encoders differ
    with pytest.raises(AdtagError, match="no such file"):
        discover_inputs([tmp_path / "missing.mp4"])


def test_kill_9_mid_run_then_the_same_command_finishes(ad: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        (folder / f"v{i}.mp4").write_bytes(ad.read_bytes())
    out = tmp_path / "feats"
    cmd = [
        sys.executable,
        "-m",
        "adtag.commands.extract",
        str(folder),
        "--out",
        str(out),
        "--workers",
        "2",
        "--threads",
        "1",
        "--no-progress",
        "--encoders",
        "audio=none,asr=none",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, mid-batch
    proc.wait()
    done_before = journal.read_text().count("\n")
    assert 2 <= done_before < 6, "the run should have been killed part-way"
    assert not (out / "manifest.jsonl").exists()
    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(r["item"]["id"] for r in records) == [f"v{i}" for i in range(6)]  # each once
    assert not list((out / "items").glob("*/.*.tmp"))
    for item in read_items(out / "manifest.jsonl"):
        assert np.load(item.features["frames"]).shape == (6, 1280)


def test_extraction_runs_with_networking_disabled(ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh model loading (from an empty cache) and extraction, with every socket refused."""
    from adtag.encoders import whisper
    from adtag.features import extract

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in this test")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("ADTAG_CACHE", str(tmp_path / "cache"))
    whisper.whisper_backend.cache_clear()
    extract._extractor.cache_clear()
    try:
        item = extract_video(ad, encoders=DEFAULT_ENCODERS)
    finally:
        whisper.whisper_backend.cache_clear()
        extract._extractor.cache_clear()
    assert {"frames", "audio", "ocr_emb"} <= set(item.features)
    assert (tmp_path / "cache" / "whisper-base-ct2" / "model.bin").is_file()
    assert list((tmp_path / "cache").glob("efficientnet-lite0*.onnx"))


def test_help_documents_every_option_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        extract_main(["--help"])
    text = capsys.readouterr().out
    for option in (
        "--out",
        "--workers",
        "--threads",
        "--encoders",
        "--language",
        "--retry-failed",
        "--overwrite",
        "--list-encoders",
        "exit status",
        "kill -9",
    ):
        assert option in text
    assert extract_main(["--list-encoders"]) == 0
    assert "visual/efficientnet-lite0 (default)" in capsys.readouterr().out
    assert extract_main([]) == 2
    assert extract_main(["x.mp4", "--out", "f", "--language", "klingon"]) == 2
    assert "unknown speech language" in capsys.readouterr().err


def test_files_whose_ids_collide_keep_their_suffix_and_extract_imports_no_torch(ad: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ad.mp4").write_bytes(ad.read_bytes())
    make_clip(folder / "ad.avi", seconds=1.0, audio=None, container_format="avi")
    (folder / "other.mp4").write_bytes(ad.read_bytes())
    notes: list[str] = []
    assert [it.id for it in discover_inputs([folder], notes)] == ["ad.avi", "ad.mp4", "other"]
    assert len(notes) == 1 and "'ad'" in notes[0] and "'ad.avi', 'ad.mp4'" in notes[0]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ad.mp4").write_bytes(b"x")
    with pytest.raises(AdtagError, match="two inputs have the id 'ad.mp4'"):  # same name twice: no way out
        discover_inputs([folder / "ad.mp4", tmp_path / "b" / "ad.mp4"])

    # The command, in a fresh process: one line says so, the batch goes on, torch is never imported.
    out = tmp_path / "feats"
    code = (
        "import sys; from adtag.cli import main; rc = main(sys.argv[1:]); print('torch' in sys.modules); sys.exit(rc)"
    )
    cmd = [sys.executable, "-c", code, "extract", str(folder), "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert [line for line in done.stderr.splitlines() if "note:" in line] == [f"adtag: note: {notes[0]}"]
    items = {it.id: it for it in read_items(out / "manifest.jsonl")}
    assert set(items) == {"ad.avi", "ad.mp4", "other"}
    assert items["ad.avi"].video.name == "ad.avi" and np.load(items["ad.avi"].features["frames"]).shape[0] >= 2
