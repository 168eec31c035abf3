"""Write frames and samples to an H.264 + AAC MP4 with PyAV, atomically.

One encoder thread per clip: clips are generated in parallel processes instead, and a single
thread keeps the bytes identical from run to run.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from adtag.io import atomic_path

AUDIO_CHUNK = 1024  # samples per AAC frame


def write_mp4(
    path: Path,
    frame_at: Callable[[int], np.ndarray],
    n_frames: int,
    fps: int,
    width: int,
    height: int,
    audio: np.ndarray | None,
    sample_rate: int,
    crf: int = 23,
) -> None:
    """Encode ``n_frames`` frames from ``frame_at(i)`` and an optional mono float32 track."""
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"preset": "superfast", "crf": str(crf)}
            video.codec_context.thread_count = 1
            sound = None
            if audio is not None:
                sound = container.add_stream("aac", rate=sample_rate)
                sound.layout = "mono"
                sound.codec_context.thread_count = 1
            for i in range(n_frames):
                frame = av.VideoFrame.from_ndarray(frame_at(i), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
            if sound is not None and audio is not None:
                pcm = np.ascontiguousarray(audio, dtype=np.float32)
                for start in range(0, len(pcm), AUDIO_CHUNK):
                    chunk = pcm[start : start + AUDIO_CHUNK]
                    af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = start
                    af.time_base = Fraction(1, sample_rate)
                    container.mux(sound.encode(af))
                container.mux(sound.encode(None))
