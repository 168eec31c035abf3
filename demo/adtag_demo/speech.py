"""Spoken lines: the espeak-ng text-to-speech engine when installed, speech-like babble otherwise.

espeak-ng (Debian package ``espeak-ng``) gives real words that the ASR stage can transcribe.
Without it the voice-over is synthesised babble: voiced syllables with moving formants,
which an audio encoder hears as speech but which carries no words; the corpus records which
one was used so the report can say whether real speech was present.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import lfilter, resample_poly

VOICES = ("en-us", "en-us+f3", "en-gb", "en-gb+f4", "en-us+m3")


@lru_cache(maxsize=1)
def tts_engine() -> str | None:
    """Path of the espeak-ng (or espeak) executable, or None."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def speak(text: str, voice: str, sr: int, speed: int = 165, pitch: int = 50) -> np.ndarray | None:
    """``text`` spoken by espeak-ng as float32 mono at ``sr`` Hz; None if no engine works."""
    engine = tts_engine()
    if engine is None:
        return None
    with tempfile.TemporaryDirectory(prefix="adtag-tts-") as tmp:
        out = Path(tmp) / "line.wav"
        try:
            subprocess.run(
                [engine, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
                check=True,
                capture_output=True,
                timeout=30,
            )
            with wave.open(str(out), "rb") as w:
                rate, width = w.getframerate(), w.getsampwidth()
                raw = w.readframes(w.getnframes())
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
            return None
    if width != 2 or not raw:
        return None
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if rate != sr:
        g = np.gcd(rate, sr)
        x = resample_poly(x, sr // g, rate // g).astype(np.float32)
    return x


# Rough (F1, F2) formant pairs of a few vowels, in Hz.
_VOWELS = ((730, 1090), (270, 2290), (300, 870), (530, 1840), (660, 1720), (490, 1350))


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)


def babble(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Speech-like sound without words: a glottal buzz through per-syllable vowel formants."""
    n = int(seconds * sr)
    out = np.zeros(n, np.float32)
    f0 = rng.uniform(95, 220)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.12, 0.28) * sr)
        seg = min(syl, n - pos)
        t = np.arange(seg) / sr
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        phase = np.cumsum(pitch / sr)
        buzz = (phase % 1.0) * 2 - 1  # sawtooth: a crude glottal source
        f1, f2 = _VOWELS[int(rng.integers(len(_VOWELS)))]
        voiced = _resonator(buzz, f1, 90, sr) + 0.6 * _resonator(buzz, f2, 120, sr)
        env = np.sin(np.pi * np.arange(seg) / max(seg, 1)) ** 0.7
        out[pos : pos + seg] = (voiced * env).astype(np.float32)
        pos += seg + int(rng.uniform(0.02, 0.08) * sr) * (1 + 4 * (rng.random() < 0.15))
    peak = float(np.abs(out).max()) or 1.0
    return out / peak * 0.6
