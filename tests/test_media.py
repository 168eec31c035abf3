"""Decoding: metadata, sampled frames (upright, resized), 16 kHz audio, and broken files."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from adtag.errors import AdtagError
from adtag.media import MediaError, iter_frames, probe, read_audio
from tests.clips import make_audio_file, make_clip, tone, truncate


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "ad.mp4", seconds=3.0, width=320, height=240, fps=10)


def test_probe_reads_metadata(clip: Path) -> None:
    info = probe(clip)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.fps == pytest.approx(10.0)
    assert info.has_video and info.has_audio
    assert set(info.as_extra()) == {"duration", "width", "height", "fps", "rotation", "has_video", "has_audio"}


def test_frames_are_sampled_every_half_second_and_resized_in_the_decoder(clip: Path) -> None:
    frames = list(iter_frames(clip, interval=0.5))
    assert [round(f.time, 2) for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert frames[0].image(224, 224).shape == (224, 224, 3)
    assert frames[0].image(160, fmt="gray").shape == (120, 160)  # aspect kept
    assert frames[0].image(160, fmt="bgr24").dtype == np.uint8


def test_audio_is_16k_mono_float(clip: Path) -> None:
    audio = read_audio(clip)
    assert audio is not None and audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(3.0, abs=0.1)
    assert 0.2 < np.abs(audio).max() <= 1.0


def _split_video(path: Path, rotation: int) -> Path:
    """A 64x48 video, white in its top half and black below, stored with a display rotation."""
    img = np.zeros((48, 64, 3), np.uint8)
    img[:24] = 255
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fractions.Fraction(5))
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(rotation)
        for _ in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_rotated_phone_video_is_turned_upright(tmp_path: Path) -> None:
    path = _split_video(tmp_path / "phone.mp4", 90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    frame = next(iter_frames(path))
    img = frame.image(48, 64, fmt="gray").astype(float)
    assert img.shape == (64, 48)
    # Rotated 90 degrees counter-clockwise for display, the stored top (white) ends up on the left.
    assert img[:, :20].mean() > 200 and img[:, -20:].mean() < 50


def test_video_without_audio_and_audio_without_video(tmp_path: Path) -> None:
    silent = make_clip(tmp_path / "silent.mp4", seconds=1.0, audio=None)
    assert read_audio(silent) is None
    assert not probe(silent).has_audio
    sound = make_audio_file(tmp_path / "voice.m4a", tone(1.5))
    info = probe(sound)
    assert info.has_audio and not info.has_video and info.width == 0
    assert list(iter_frames(sound)) == []
    assert len(read_audio(sound)) / 16000 == pytest.approx(1.5, abs=0.1)


def test_one_frame_video_gives_one_frame(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "one.mp4", frames=1, audio=None)
    assert len(list(iter_frames(path))) == 1


def test_large_and_long_videos_stream_without_holding_frames(tmp_path: Path) -> None:
    big = make_clip(tmp_path / "4k.mp4", width=3840, height=2160, frames=3, fps=5, audio=None, crf=40)
    frame = next(iter_frames(big))
    assert frame.size == (3840, 2160) and frame.image(960, fmt="bgr24").shape == (540, 960, 3)
    long = make_clip(tmp_path / "long.mp4", width=64, height=48, fps=2, seconds=600, audio=None, crf=45)
    assert probe(long).duration == pytest.approx(600, abs=1)
    times = [f.time for f in iter_frames(long)]  # a generator: one decoded frame alive at a time
    assert len(times) == 1200 and times[-1] == pytest.approx(599.5)


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "missing"])
def test_broken_files_raise_an_error_naming_the_file(tmp_path: Path, clip: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "truncated":
        truncate(clip, path, 0.5)  # moov atom at the end: cut off
    with pytest.raises(MediaError) as err:
        probe(path)
    assert str(path) in str(err.value) and isinstance(err.value, AdtagError)


def test_truncated_streamable_file_keeps_the_frames_before_the_cut(tmp_path: Path) -> None:
    full = make_clip(tmp_path / "full.mp4", seconds=4.0, fps=10, audio=None, container_format="mp4")
    # Re-mux with the index first (as streaming sites do), then cut the file in the middle.
    fast = tmp_path / "fast.mp4"
    with av.open(str(full)) as src, av.open(str(fast), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    cut = truncate(fast, tmp_path / "cut.mp4", 0.6)
    times = [f.time for f in iter_frames(cut)]
    assert 1 <= len(times) < 8
