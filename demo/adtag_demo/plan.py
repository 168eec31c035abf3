"""What one demo clip will be: its tags, where their evidence goes, its size, length and gaps.

A plan is drawn from its own random stream ``(seed, index)``, so clip ``i`` is the same
whatever the corpus size; that is what lets a larger corpus reuse the clips of a smaller one.
Tags are drawn first with realistic co-occurrence (games are mostly animated, tutorials
talk and caption, ...); the evidence is then dropped per channel, a few clips lose their audio
track or carry no text, and some show a distracting cue for a tag they do not have.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from adtag_demo.taxonomy import AUDIO_CHANNELS, BY_KEY, STYLES, TAGS

# (width, height, weight): mostly 360p-class sizes, some 480p/540p, a few 720p (costly to encode).
SIZES = (
    (640, 360, 0.34),
    (360, 640, 0.2),
    (480, 480, 0.12),
    (854, 480, 0.14),
    (960, 540, 0.12),
    (1280, 720, 0.05),
    (720, 1280, 0.03),
)
FPS = ((10, 0.6), (12, 0.3), (15, 0.1))
PRIMARY_KEEP = 0.95
SECONDARY_KEEP = 0.7
P_NO_AUDIO = 0.12
P_NO_TEXT = 0.2
P_DISTRACTOR = 0.15
MIN_TAGS, MAX_TAGS = 3, 6


@dataclass
class ClipPlan:
    """Everything decided about a clip before any pixel or sample is made."""

    id: str
    index: int
    seed: int  # the renderer's own random stream
    tags: list[str]  # tag keys, the ground truth
    evidence: dict[str, list[str]]  # tag key -> channels that carry a cue (distractors included)
    distractors: list[str] = field(default_factory=list)  # tag keys cued but not in ``tags``
    width: int = 640
    height: int = 360
    fps: int = 10
    n_frames: int = 90
    has_audio: bool = True
    has_text: bool = True

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def cued(self, key: str, channel: str) -> bool:
        """Whether the clip shows a cue for ``key`` in ``channel`` (true tag or distractor)."""
        return channel in self.evidence.get(key, ())

    def digest(self) -> str:
        """A stable hash of the plan, used to decide whether an existing clip can be reused."""
        blob = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _draw_tags(rng: np.random.Generator, has_text: bool) -> list[str]:
    """Draw a tag set with the co-occurrences of real ads."""
    tags: list[str] = []
    product = _pick(rng, {"cosmetics": 0.22, "food": 0.22, "electronics": 0.22, "game": 0.16, "": 0.18})
    if product:
        tags.append(product)
    animated = rng.random() < (0.85 if product == "game" else 0.3)
    tags.append("animation" if animated else "live")

    scene_w = {"indoor": 0.42, "outdoor": 0.43, "": 0.15}
    if product in ("cosmetics", "food"):
        scene_w["indoor"] += 0.2
    scene = _pick(rng, scene_w)
    if scene == "indoor":
        tags.append("indoor")
    elif scene == "outdoor":
        tags.append("outdoor")
        sub = _pick(rng, {"city": 0.45, "nature": 0.45, "": 0.1})
        if sub:
            tags.append(sub)
        if rng.random() < 0.25:
            tags.append("night")

    if rng.random() < 0.6:
        style_w = dict.fromkeys(STYLES, 1.0)
        bias = {
            "cosmetics": ("warm", "premium"),
            "food": ("warm", "funny"),
            "electronics": ("tech", "premium"),
            "game": ("energetic", "funny"),
        }.get(product, ())
        for s in bias:
            style_w[s] += 2.5
        tags.append(_pick(rng, style_w))

    narrative = _pick(rng, {"promotion": 0.22, "tutorial": 0.1 if product != "game" else 0.0, "story": 0.1, "": 0.58})
    if narrative:
        tags.append(narrative)
    talk = 0.85 if narrative in ("tutorial", "story") else 0.35
    if rng.random() < talk:
        tags.append("voiceover")
    if has_text and rng.random() < (0.85 if narrative == "tutorial" else 0.35):
        tags.append("subtitles")
    if rng.random() < 0.38:
        tags.append("music")
    if rng.random() < (0.3 if not animated else 0.12):
        tags.append("person")
    if rng.random() < 0.1:
        tags.append("split")
    if product and rng.random() < 0.3:
        tags.append("closeup")
    return tags


def _available(channel: str, tags: list[str], has_audio: bool, has_text: bool) -> bool:
    """Whether a channel can exist in this clip at all (speech needs a voice-over, ...)."""
    if channel in AUDIO_CHANNELS and not has_audio:
        return False
    if channel == "text" and not has_text:
        return False
    if channel == "speech" and "voiceover" not in tags:
        return False
    if channel == "music" and "music" not in tags:
        return False
    return True


def _draw_evidence(rng: np.random.Generator, tags: list[str], has_audio: bool, has_text: bool) -> dict[str, list[str]]:
    """Keep each tag's channels at random; most tags keep at least one, a few keep none."""
    evidence: dict[str, list[str]] = {}
    for key in tags:
        channels = BY_KEY[key].channels
        possible = [c for c in channels if _available(c, tags, has_audio, has_text)]
        kept = [c for c in possible if rng.random() < (PRIMARY_KEEP if c == channels[0] else SECONDARY_KEEP)]
        if not kept and possible and rng.random() < 0.8:
            kept = [possible[int(rng.integers(len(possible)))]]
        evidence[key] = kept
    return evidence


def _draw_distractor(
    rng: np.random.Generator, tags: list[str], has_audio: bool, has_text: bool
) -> tuple[str, str] | None:
    """A cue for a tag the clip does not have, in a secondary channel (modalities disagree)."""
    candidates = []
    for t in TAGS:
        if t.key in tags or t.key in ("voiceover", "music", "subtitles", "live", "animation"):
            continue
        for c in t.channels[1:]:
            if _available(c, tags, has_audio, has_text):
                candidates.append((t.key, c))
    if not candidates:
        return None
    return candidates[int(rng.integers(len(candidates)))]


def make_plan(seed: int, index: int) -> ClipPlan:
    """The plan of clip ``index`` in the corpus of ``seed``; independent of the corpus size."""
    rng = np.random.default_rng([seed, index, 0xAD7A6])
    has_audio = rng.random() >= P_NO_AUDIO
    has_text = rng.random() >= P_NO_TEXT
    for _ in range(100):
        tags = _draw_tags(rng, has_text)
        if MIN_TAGS <= len(tags) <= MAX_TAGS:
            break
    evidence = _draw_evidence(rng, tags, has_audio, has_text)
    distractors: list[str] = []
    if rng.random() < P_DISTRACTOR:
        d = _draw_distractor(rng, tags, has_audio, has_text)
        if d is not None:
            evidence.setdefault(d[0], []).append(d[1])
            distractors.append(d[0])
    sizes = np.array([s[2] for s in SIZES])
    w, h, _ = SIZES[int(rng.choice(len(SIZES), p=sizes / sizes.sum()))]
    fps_p = np.array([f[1] for f in FPS])
    fps = FPS[int(rng.choice(len(FPS), p=fps_p / fps_p.sum()))][0]
    seconds = float(rng.uniform(6.0, 12.0))
    order = {t.key: i for i, t in enumerate(TAGS)}
    return ClipPlan(
        id=f"ad{index:04d}",
        index=index,
        seed=int(rng.integers(2**31)),
        tags=sorted(tags, key=order.__getitem__),
        evidence={k: evidence[k] for k in sorted(evidence, key=order.__getitem__)},
        distractors=distractors,
        width=w,
        height=h,
        fps=fps,
        n_frames=int(round(seconds * fps)),
        has_audio=has_audio,
        has_text=has_text,
    )
