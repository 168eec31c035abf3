"""Mix a clip's audio track from its music, sound and speech cues, over a noise floor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adtag_demo.plan import ClipPlan
from adtag_demo.script import lines_for
from adtag_demo.sounds import SOUNDS, music
from adtag_demo.speech import VOICES, babble, speak

SAMPLE_RATE = 16_000  # what the Whisper-based audio stages resample to anyway
SPEECH_KEYS = ("cosmetics", "food", "electronics", "promotion", "tutorial", "story")
MUSIC_FLAVOURS = ("game", "energetic", "tech", "premium", "warm")  # first cued one wins


@dataclass
class Soundtrack:
    """The mixed samples and what they contain (for the corpus record)."""

    samples: np.ndarray  # float32 mono at SAMPLE_RATE
    speech: str = "none"  # "none", "tts" (espeak-ng words) or "babble" (no TTS engine)
    spoken: list[str] = field(default_factory=list)
    music: str = ""  # the music flavour, "" when there is no music
    sounds: list[str] = field(default_factory=list)


def _speech_track(plan: ClipPlan, rng: np.random.Generator, n: int) -> tuple[np.ndarray, str, list[str]]:
    """Lines spoken one after another from ~0.5 s on, as many as fit in the clip."""
    keys = [k for k in SPEECH_KEYS if plan.cued(k, "speech")]
    lines = lines_for(keys, rng, max(2, int(plan.duration // 2.5)), caption=False)
    voices = [VOICES[int(i)] for i in rng.choice(len(VOICES), 2, replace=False)]
    speed = int(rng.integers(150, 185))
    track = np.zeros(n, np.float32)
    at = int(rng.uniform(0.3, 0.8) * SAMPLE_RATE)
    spoken: list[str] = []
    kind = "tts"
    for i, line in enumerate(lines):
        voice = voices[i % 2] if "story" in keys else voices[0]  # a dialogue takes two voices
        clip = speak(line, voice, SAMPLE_RATE, speed=speed, pitch=int(rng.integers(35, 70)))
        if clip is None:
            kind = "babble"
            clip = babble(rng.uniform(1.2, 2.2), rng, SAMPLE_RATE)
        if at + len(clip) > n - int(0.2 * SAMPLE_RATE):
            break
        track[at : at + len(clip)] += clip
        spoken.append(line if kind == "tts" else "")
        at += len(clip) + int(rng.uniform(0.25, 0.6) * SAMPLE_RATE)
    if not spoken:
        return track, "none", []
    peak = float(np.abs(track).max()) or 1.0
    return track / peak, kind, [s for s in spoken if s]


def build_soundtrack(plan: ClipPlan, rng: np.random.Generator) -> Soundtrack | None:
    """The clip's audio, or None for a clip without an audio track."""
    if not plan.has_audio:
        return None
    n = plan.n_frames * SAMPLE_RATE // plan.fps
    mix = rng.normal(0, rng.uniform(0.002, 0.012), n).astype(np.float32)  # room tone / hiss
    out = Soundtrack(mix)
    speech = np.zeros(n, np.float32)
    if any(plan.cued(k, "speech") for k in (*SPEECH_KEYS, "voiceover")):
        speech, out.speech, out.spoken = _speech_track(plan, rng, n)
    if any(plan.cued(k, "music") for k in (*MUSIC_FLAVOURS, "music")):
        out.music = next((f for f in MUSIC_FLAVOURS if plan.cued(f, "music")), "neutral")
        duck = 0.45 if out.speech != "none" else 1.0  # music steps back under the voice
        mix += rng.uniform(0.18, 0.3) * duck * music(out.music, plan.duration, rng, SAMPLE_RATE)[:n]
    for key, make in SOUNDS.items():
        if plan.cued(key, "sound"):
            mix += rng.uniform(0.2, 0.35) * make(plan.duration, rng, SAMPLE_RATE)[:n]
            out.sounds.append(key)
    mix += 0.7 * speech
    peak = float(np.abs(mix).max())
    if peak > 0.95:
        mix *= 0.95 / peak
    out.samples = mix.astype(np.float32)
    return out
