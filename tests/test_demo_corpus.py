"""The built-in ad corpus: real files, real evidence, determinism and reuse.

A tiny corpus (6 clips) is generated once; the seed is chosen so that those six clips include
one without an audio track, one without any text, a voice-over and background music, which
keeps the test meaningful if the taxonomy's probabilities are retuned.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from adtag.data.manifest import read_items
from adtag.data.vocab import Vocabulary
from adtag_demo.corpus import corpus_notes, generate_corpus, read_corpus_info
from adtag_demo.fonts import drawable, find_cjk_font, render_text
from adtag_demo.plan import MAX_TAGS, MIN_TAGS, make_plan
from adtag_demo.taxonomy import BY_KEY, BY_NAME, GROUPS, TAGS

N = 6


def _seed_with_coverage() -> int:
    for seed in range(500):
        plans = [make_plan(seed, i) for i in range(N)]
        if (
            any(not p.has_audio for p in plans)
            and any(not p.has_text for p in plans)
            and any(p.has_audio and p.cued("voiceover", "speech") for p in plans)
            and any(p.has_audio and p.cued("music", "music") for p in plans)
            and any(p.cued("subtitles", "text") for p in plans)
        ):
            return seed
    raise AssertionError("no seed covers the cases under test")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    seed = _seed_with_coverage()
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, N, seed=seed, progress=False, workers=1)
    return out, seed


def _decode(path: Path) -> tuple[list[np.ndarray], np.ndarray | None, av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return frames, audio, stream


def test_taxonomy_is_bilingual_grouped_and_written_as_vocab(corpus: tuple[Path, int]) -> None:
    out, _ = corpus
    assert 20 <= len(TAGS) <= 30
    assert {t.group for t in TAGS} == set(GROUPS)
    for t in TAGS:
        zh, en = t.name.split("/", 1)
        assert any(ord(c) > 0x2E80 for c in zh) and en.isascii()
    vocab = Vocabulary.from_file(out / "vocab.txt")
    assert vocab.tags == [t.name for t in TAGS]
    items = read_items(out / "manifest.jsonl")
    assert [i.id for i in items] == [f"ad{i:04d}" for i in range(N)]
    for item in items:
        assert MIN_TAGS <= len(item.tags or []) <= MAX_TAGS
        assert set(item.tags or []) <= set(vocab.tags)
        assert item.video is not None and item.video.is_file()


def test_clips_decode_to_their_declared_size_length_and_tracks(corpus: tuple[Path, int]) -> None:
    out, _ = corpus
    info = read_corpus_info(out)
    for item in read_items(out / "manifest.jsonl"):
        rec = info["clips"][item.id]
        frames, audio, stream = _decode(item.video)
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", rec["width"], rec["height"])
        assert 360 <= min(rec["width"], rec["height"]) <= 720
        assert len(frames) == rec["n_frames"] and 6.0 <= len(frames) / rec["fps"] <= 12.0
        assert frames[0].shape == (rec["height"], rec["width"], 3)
        assert (audio is not None) == rec["has_audio"]
        if audio is not None:
            assert abs(len(audio) / 16000 - rec["duration"]) < 0.2


def test_audio_evidence_is_audible_and_speech_is_detected(corpus: tuple[Path, int]) -> None:
    out, _ = corpus
    info = read_corpus_info(out)
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    checked_music = checked_speech = 0
    for clip_id in info["ids"]:
        rec = info["clips"][clip_id]
        _, audio, _ = _decode(out / "clips" / f"{clip_id}.mp4")
        cues = {ch for chs in rec["evidence"].values() for ch in chs}
        if not rec["has_audio"]:
            assert audio is None
            continue
        rms = float(np.sqrt(np.mean(audio**2)))
        if cues & {"music", "speech"}:
            assert rms > 0.02, f"{clip_id}: audio cue but near silence (rms {rms:.4f})"
        if "speech" in cues and rec["speech"] != "none":
            spans = get_speech_timestamps(audio.astype(np.float32), VadOptions(min_speech_duration_ms=250))
            assert spans, f"{clip_id}: a voice-over the speech detector does not hear"
            checked_speech += 1
        if rec["music"]:
            checked_music += 1
    assert checked_music and checked_speech


def test_captions_are_readable_and_textless_clips_have_none(corpus: tuple[Path, int]) -> None:
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    ocr = rapidocr.RapidOCR()
    out, _ = corpus
    info = read_corpus_info(out)

    def norm(s: str) -> str:
        return "".join(s.split()).upper()  # OCR drops the spaces between words

    def read(clip_id: str) -> set[str]:
        frames, _, _ = _decode(out / "clips" / f"{clip_id}.mp4")
        found: set[str] = set()
        # 7 frames spread over the clip (<= 1.4 s apart: each caption stays up >= 1.4 s).
        for frame in [frames[int(i)] for i in np.linspace(0, len(frames) - 1, 7)]:
            scale = 640 / max(frame.shape[:2])  # the extraction's OCR works at 640 px too
            small = np.asarray(
                Image.fromarray(frame).resize((round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
            )
            result, _ = ocr(small[..., ::-1].copy(), use_cls=False)
            found |= {norm(line[1]) for line in result or [] if line[2] > 0.6}
        return found

    recs = info["clips"]
    textless = next(i for i in info["ids"] if not recs[i]["has_text"])
    assert recs[textless]["texts"] == []
    # Pixel-art heroes and photos can fool OCR into a character or two, never into words.
    assert not [r for r in read(textless) if len(r) >= 3], f"{textless}: declared text-free"
    captioned = max(info["ids"], key=lambda i: len(recs[i]["texts"]))
    drawn = recs[captioned]["texts"]
    found = read(captioned)
    hits = [t for t in drawn if any(norm(t) in r or (len(r) >= 4 and r in norm(t)) for r in found)]
    assert len(hits) >= max(1, len(set(drawn)) // 2), f"{captioned}: drew {drawn}, OCR read {found}"


def test_rerun_reuses_clips_and_a_larger_corpus_extends_a_smaller_one(corpus: tuple[Path, int]) -> None:
    out, seed = corpus
    clips = sorted((out / "clips").glob("*.mp4"))
    before = {p.name: p.stat().st_mtime_ns for p in clips}
    generate_corpus(out, N, seed=seed, progress=False, workers=1)
    assert {p.name: p.stat().st_mtime_ns for p in clips} == before
    generate_corpus(out, N + 1, seed=seed, progress=False, workers=1)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.mp4")}
    assert {k: after[k] for k in before} == before and len(after) == N + 1
    assert len(read_items(out / "manifest.jsonl")) == N + 1
    generate_corpus(out, N, seed=seed, progress=False, workers=1)  # back to N: the manifest shrinks
    assert len(read_items(out / "manifest.jsonl")) == N
    assert not list((out / "clips").glob(".*"))  # no temporary files left behind


def test_same_seed_gives_identical_bytes_even_in_parallel(corpus: tuple[Path, int], tmp_path: Path) -> None:
    out, seed = corpus
    generate_corpus(tmp_path, 3, seed=seed, progress=False, workers=2)
    for i in range(3):
        a = hashlib.sha256((out / "clips" / f"ad{i:04d}.mp4").read_bytes()).hexdigest()
        b = hashlib.sha256((tmp_path / "clips" / f"ad{i:04d}.mp4").read_bytes()).hexdigest()
        assert a == b
    other = make_plan(seed + 1, 0)
    assert (other.tags, other.width, other.n_frames) != (
        make_plan(seed, 0).tags,
        make_plan(seed, 0).width,
        make_plan(seed, 0).n_frames,
    )


def test_plans_make_fusion_necessary() -> None:
    """Over many clips: every tag occurs, modalities go missing, cues disagree."""
    plans = [make_plan(0, i) for i in range(400)]
    counts = Counter(t for p in plans for t in p.tags)
    assert set(counts) == set(BY_KEY) and min(counts.values()) >= 8
    assert 0.05 < np.mean([not p.has_audio for p in plans]) < 0.25
    assert 0.1 < np.mean([not p.has_text for p in plans]) < 0.3
    assert 0.05 < np.mean([bool(p.distractors) for p in plans]) < 0.3
    for p in plans:
        for key, channels in p.evidence.items():
            assert set(channels) <= set(BY_KEY[key].channels)
            if not p.has_audio:
                assert not set(channels) & {"music", "speech", "sound"}
        assert not set(p.distractors) & set(p.tags)
    # A multi-channel tag sometimes loses a channel: no single modality sees all of its clips.
    product = [(p, k) for p in plans for k in ("cosmetics", "food", "electronics") if k in p.tags]
    assert any("text" not in p.evidence[k] for p, k in product)
    assert any("visual" not in p.evidence[k] for p, k in product)
    assert any({"text", "visual"} <= set(p.evidence[k]) for p, k in product)
    assert {BY_NAME[t.name].key for t in TAGS} == set(BY_KEY)


def test_without_a_cjk_font_captions_fall_back_to_latin(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        choice = find_cjk_font(candidates=())
    assert not choice.cjk and "no CJK font" in caplog.text
    assert drawable("限时优惠 LIMITED OFFER", choice) == "LIMITED OFFER"
    img = render_text("限时优惠 LIMITED OFFER", choice, 28)
    assert img.shape[2] == 4 and img[..., 3].max() == 255
    packaged = find_cjk_font()
    assert packaged.cjk, "the noto-cjk-sans-otc dependency should provide a CJK font"


def test_notes_say_what_the_corpus_holds(corpus: tuple[Path, int]) -> None:
    out, _ = corpus
    info = read_corpus_info(out)
    notes = "\n".join(corpus_notes(out))
    no_audio = sum(not info["clips"][i]["has_audio"] for i in info["ids"])
    assert f"{len(info['ids'])} generated ad clips" in notes
    assert f"{no_audio} clips have no audio track" in notes
    assert ("espeak-ng" in notes) == (info["speech"] == "tts")


def test_an_interrupted_run_resumes_with_the_clips_it_finished(
    corpus: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adtag_demo.corpus as corpus_mod

    _, seed = corpus
    real = corpus_mod.make_clip  # stop (as Ctrl-C would) while making the third clip
    calls: list[str] = []

    def flaky(plan, path, font):  # type: ignore[no-untyped-def]
        calls.append(plan.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(plan, path, font)

    monkeypatch.setattr(corpus_mod, "make_clip", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(tmp_path, 3, seed=seed, progress=False, workers=1)
    assert not (tmp_path / "manifest.jsonl").exists()  # no manifest for an unfinished corpus
    assert sorted(read_corpus_info(tmp_path)["clips"]) == ["ad0000", "ad0001"]
    made: list[str] = []
    monkeypatch.setattr(corpus_mod, "make_clip", lambda p, path, f: made.append(p.id) or real(p, path, f))
    generate_corpus(tmp_path, 3, seed=seed, progress=False, workers=1)
    assert made == ["ad0002"]
    assert len(read_items(tmp_path / "manifest.jsonl")) == 3
