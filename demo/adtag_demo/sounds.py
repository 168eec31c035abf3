"""Synthesised music and sound effects, each with the acoustic signature of its tag.

Music follows the style: warm is slow and major on soft sines, tech is a fast square-wave
arpeggio, premium is sparse decaying piano-like notes, energetic has a four-on-the-floor kick
and hi-hats, games get chiptune. Sounds are not music: city traffic and horns, birdsong in
nature, cartoon boings for funny ads, vinyl crackle for vintage ones.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

# bpm, wave shape, note length in beats, scale steps of the chord, brightness
FLAVOURS = {
    "neutral": (100, "triangle", 0.5, (0, 4, 7), 0.5),
    "warm": (78, "sine", 1.0, (0, 4, 7, 11), 0.3),
    "tech": (126, "square", 0.25, (0, 3, 7, 10), 0.8),
    "premium": (64, "piano", 1.0, (0, 3, 7, 14), 0.4),
    "energetic": (140, "saw", 0.5, (0, 7, 12), 0.7),
    "game": (150, "square", 0.25, (0, 4, 7, 12), 1.0),
}
PROGRESSION = (0, 7, 9, 5)  # I - V - vi - IV


def _midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def _osc(shape: str, freq: float, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    phase = (freq * t) % 1.0
    if shape == "sine":
        return np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(4 * np.pi * freq * t)
    if shape == "triangle":
        return 4 * np.abs(phase - 0.5) - 1
    if shape == "square":
        return np.where(phase < 0.5, 0.6, -0.6)
    if shape == "saw":
        return 2 * phase - 1
    if shape == "piano":
        return sum(np.sin(2 * np.pi * freq * k * t) / k**1.5 for k in range(1, 6)) * np.exp(-3.0 * t)
    raise ValueError(shape)


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a, r = min(n, int(attack * sr)), min(n, int(release * sr))
    if a:
        env[:a] = np.linspace(0, 1, a)
    if r:
        env[-r:] *= np.linspace(1, 0, r)
    return env


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    return lfilter([alpha], [1, alpha - 1], x)


def music(flavour: str, seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A looping chord progression in a random key, voiced by the flavour's instrument."""
    bpm, shape, length, chord, bright = FLAVOURS[flavour]
    n = int(seconds * sr)
    out = np.zeros(n)
    beat = 60.0 / bpm
    root = int(rng.integers(55, 64)) + (12 if flavour == "game" else 0)
    step = length * beat
    note_n = int(step * sr)
    i = 0
    t = 0.0
    while t < seconds:
        bar = int(t / (4 * beat)) % len(PROGRESSION)
        m = root + PROGRESSION[bar] + chord[i % len(chord)]
        start = int(t * sr)
        seg = min(note_n, n - start)
        tone = _osc(shape, _midi_hz(m), seg, sr) * _envelope(seg, sr, 0.01 if bright > 0.5 else 0.08, 0.05)
        out[start : start + seg] += tone
        if i % len(chord) == 0:  # a bass note under each chord change
            bass_n = min(int(4 * beat * sr), n - start)
            out[start : start + bass_n] += (
                0.5 * _osc("sine", _midi_hz(m - 24), bass_n, sr) * _envelope(bass_n, sr, 0.02, 0.2)
            )
        i += 1
        t += step
    if flavour == "energetic":
        out += 1.5 * _drums(seconds, beat, rng, sr)
    if bright < 0.5:
        out = _lowpass(out, 0.25)
    peak = np.abs(out).max() or 1.0
    return (out / peak).astype(np.float32)


def _drums(seconds: float, beat: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(seconds * sr)
    out = np.zeros(n)
    kick_n = int(0.15 * sr)
    tk = np.arange(kick_n) / sr
    kick = np.sin(2 * np.pi * np.cumsum(40 + 100 * np.exp(-tk * 30)) / sr) * np.exp(-tk * 20)
    hat_n = int(0.04 * sr)
    for k in range(int(seconds / beat) + 1):
        s = int(k * beat * sr)
        seg = min(kick_n, n - s)
        if seg > 0:
            out[s : s + seg] += kick[:seg]
        h = int((k + 0.5) * beat * sr)
        seg = min(hat_n, n - h)
        if seg > 0:
            noise = np.diff(rng.normal(0, 1, seg + 1))  # differenced noise: bright, like a hi-hat
            out[h : h + seg] += 0.3 * noise * np.exp(-np.arange(seg) / sr * 80)
    return out


def _place(out: np.ndarray, clip: np.ndarray, at: int) -> None:
    seg = min(len(clip), len(out) - at)
    if seg > 0 and at >= 0:
        out[at : at + seg] += clip[:seg]


def traffic(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(seconds * sr)
    rumble = _lowpass(np.cumsum(rng.normal(0, 1, n)) * 0.02 + rng.normal(0, 1, n), 0.02)
    rumble = rumble / (np.abs(rumble).max() or 1.0) * 0.6
    for _ in range(int(rng.integers(1, 4))):  # car horns: two detuned square tones
        m = int(0.35 * sr)
        t = np.arange(m) / sr
        horn = (
            0.25
            * (np.sign(np.sin(2 * np.pi * 400 * t)) + np.sign(np.sin(2 * np.pi * 500 * t)))
            * _envelope(m, sr, 0.01, 0.05)
        )
        _place(rumble, horn, int(rng.integers(0, max(1, n - m))))
    return rumble.astype(np.float32)


def birdsong(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(seconds * sr)
    out = rng.normal(0, 0.01, n)  # a little wind
    for _ in range(int(seconds * rng.uniform(1.5, 3.0))):
        at = int(rng.integers(0, n))
        f0 = rng.uniform(2500, 4500)
        for k in range(int(rng.integers(2, 6))):
            m = int(rng.uniform(0.04, 0.09) * sr)
            t = np.arange(m) / sr
            sweep = f0 * (1 + rng.uniform(0.2, 0.6) * t / t[-1])
            chirp = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.sin(np.pi * t / t[-1]) * 0.5
            _place(out, chirp, at + k * int(0.11 * sr))
    return out.astype(np.float32)


def boings(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(seconds * sr)
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 5))):
        m = int(0.45 * sr)
        t = np.arange(m) / sr
        f = 180 + 700 * t / t[-1] + 40 * np.sin(2 * np.pi * 18 * t)  # rising pitch with a wobble
        _place(out, 0.7 * np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-2 * t), int(rng.integers(0, max(1, n - m))))
    return out.astype(np.float32)


def crackle(seconds: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(seconds * sr)
    hiss = _lowpass(rng.normal(0, 0.05, n), 0.3)
    clicks = (rng.random(n) < 40 / sr) * rng.uniform(-0.8, 0.8, n)
    return (hiss + _lowpass(clicks, 0.6)).astype(np.float32)


SOUNDS = {"city": traffic, "nature": birdsong, "funny": boings, "vintage": crackle}
