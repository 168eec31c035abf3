"""The OCR gate: OCR follows the text on screen, not the camera (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtag.encoders import create_encoder
from adtag.features.ocr_frames import OcrPolicy, OcrTracker
from adtag.media import iter_frames
from tests.clips import make_panning_clip


@pytest.fixture(scope="module")
def reader():
    return create_encoder("ocr/ppocr-v4")


def _track(reader, clip: Path, policy: OcrPolicy | None = None) -> OcrTracker:
    tracker = OcrTracker(reader, policy or OcrPolicy())
    for frame in iter_frames(clip, 0.5):
        tracker.feed(frame)
    return tracker


def test_pans_zooms_and_cuts_do_not_trigger_ocr_but_new_captions_do(reader, tmp_path: Path) -> None:
    # Every sampled frame differs in its pixels (a pan and zoom over photographs, shake, a cut at
    # 2 s and 4 s); the captions change at 3 s, leave at 4.5 s and a third one appears at 5 s.
    captions = [(0, 3, "SUMMER SALE"), (3, 4.5, "FREE DELIVERY"), (5, 7, "NEW ARRIVALS")]
    clip = make_panning_clip(tmp_path / "pan.mp4", seconds=7.0, width=640, height=360, captions=captions)
    tracker = _track(reader, clip)
    assert tracker.text.replace(" ", "") == "SUMMERSALEFREEDELIVERYNEWARRIVALS"
    assert tracker.frames_seen == 14
    # One read per caption, one for the caption leaving; the probe found the one after the gap.
    assert tracker.frames_read <= 5 and tracker.probes >= 1


def test_ocr_calls_are_capped_per_second_of_video(reader, tmp_path: Path) -> None:
    words = ["SALE", "SHOES", "COFFEE", "TRAVEL", "PHONES", "GARDEN", "BOOKS", "MUSIC"]
    captions = [(0.5 * i, 0.5 * i + 0.5, w) for i, w in enumerate(words)]  # a new caption every frame
    clip = make_panning_clip(tmp_path / "fast.mp4", seconds=4.0, captions=captions, cut_every=10.0)
    every = _track(reader, clip, OcrPolicy(max_per_second=10.0))
    capped = _track(reader, clip, OcrPolicy(max_per_second=1.0))
    assert every.frames_read == 8  # the text changed on every sampled frame
    assert capped.frames_read == 4  # at most one OCR call per second of video
