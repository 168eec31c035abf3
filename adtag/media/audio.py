"""The soundtrack as 16 kHz mono float32, the rate every audio encoder here expects."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from adtag.media.errors import MediaError
from adtag.media.probe import open_container

SAMPLE_RATE = 16000


def read_audio(path: str | Path, rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray | None:
    """Decode the first audio stream, resampled to ``rate`` Hz mono float32 in [-1, 1].

    Returns None when the file has no audio stream. A stream that breaks part-way keeps the
    samples decoded so far; one that yields nothing raises MediaError naming the file.
    """
    with open_container(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        total = 0
        limit = None if max_seconds is None else int(max_seconds * rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if limit is not None and total >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(path, f"audio stream cannot be decoded ({exc.strerror or exc})") from None
        samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        return samples[:limit] if limit is not None else samples
