"""Frame composition: pre-rendered layers moved over time and blended, one frame at a time.

Everything expensive (drawing, grading, text) happens once per layer; a frame is then a few
slices and small alpha blends, which is what keeps 150 clips within the time budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Motion:
    """A straight path from (x0, y0) to (x1, y1) over the layer's window, plus a bounce."""

    x0: float
    y0: float
    x1: float
    y1: float
    bounce: float = 0.0  # pixels
    freq: float = 1.0  # bounces per second

    def at(self, u: float, t: float) -> tuple[int, int]:
        x = self.x0 + (self.x1 - self.x0) * u
        y = self.y0 + (self.y1 - self.y0) * u - self.bounce * abs(math.sin(math.pi * self.freq * t))
        return int(round(x)), int(round(y))


@dataclass
class Layer:
    """An RGBA image shown from ``t0`` to ``t1`` seconds, moving along ``motion``."""

    rgb: np.ndarray  # h x w x 3 float32
    alpha: np.ndarray  # h x w x 1 float32 in 0..1
    motion: Motion
    t0: float = 0.0
    t1: float = math.inf

    @classmethod
    def from_rgba(cls, rgba: np.ndarray, motion: Motion, t0: float = 0.0, t1: float = math.inf) -> Layer:
        return cls(rgba[..., :3].astype(np.float32), rgba[..., 3:4].astype(np.float32) / 255.0, motion, t0, t1)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def draw(self, frame: np.ndarray, t: float) -> None:
        if not (self.t0 <= t < self.t1):
            return
        span = self.t1 - self.t0
        u = (t - self.t0) / span if math.isfinite(span) and span > 0 else 0.0
        x, y = self.motion.at(u, t)
        blend(frame, self.rgb, self.alpha, x, y)


def blend(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``rgb`` onto ``frame`` in place at top-left (x, y), clipped to the frame."""
    fh, fw = frame.shape[:2]
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return
    src = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    region = frame[y0:y1, x0:x1].astype(np.float32)
    a = alpha[src]
    frame[y0:y1, x0:x1] = (region + (rgb[src] - region) * a).astype(np.uint8)


@dataclass
class Panel:
    """A window of the frame filled by a moving crop of a larger background (a camera pan)."""

    x: int
    y: int
    w: int
    h: int
    background: np.ndarray  # larger than (h, w): room to pan
    start: tuple[int, int]
    end: tuple[int, int]
    shake: int = 0

    def draw(self, frame: np.ndarray, u: float, rng_state: int) -> None:
        ox = self.start[0] + (self.end[0] - self.start[0]) * u
        oy = self.start[1] + (self.end[1] - self.start[1]) * u
        if self.shake:
            # Deterministic jitter from the frame number: handheld or energetic camera.
            ox += ((rng_state * 7919) % (2 * self.shake + 1)) - self.shake
            oy += ((rng_state * 104729) % (2 * self.shake + 1)) - self.shake
        bh, bw = self.background.shape[:2]
        ox = int(min(max(ox, 0), bw - self.w))
        oy = int(min(max(oy, 0), bh - self.h))
        frame[self.y : self.y + self.h, self.x : self.x + self.w] = self.background[oy : oy + self.h, ox : ox + self.w]


@dataclass
class Shot:
    """A continuous stretch between two cuts: its panels (usually one) and layers."""

    t0: float
    t1: float
    panels: list[Panel]
    layers: list[Layer] = field(default_factory=list)


@dataclass
class Timeline:
    """A whole clip's picture: shots, then overlays that span cuts, then film effects."""

    width: int
    height: int
    fps: int
    n_frames: int
    shots: list[Shot]
    overlays: list[Layer] = field(default_factory=list)  # captions and banners, over every shot
    grain: list[np.ndarray] = field(default_factory=list)  # cycled int16 noise (vintage)
    flash_every: float = 0.0  # seconds between brightness flashes (energetic); 0 = none

    def frame(self, i: int) -> np.ndarray:
        t = i / self.fps
        frame = np.zeros((self.height, self.width, 3), np.uint8)
        shot = next((s for s in self.shots if s.t0 <= t < s.t1), self.shots[-1])
        u = (t - shot.t0) / max(shot.t1 - shot.t0, 1e-6)
        for panel in shot.panels:
            panel.draw(frame, u, i)
        for layer in shot.layers:
            layer.draw(frame, t)
        if self.grain:
            frame = np.clip(frame.astype(np.int16) + self.grain[i % len(self.grain)], 0, 255).astype(np.uint8)
        if self.flash_every and (t % self.flash_every) < 1.0 / self.fps:
            frame = (frame // 2 + 128).astype(np.uint8)
        for layer in self.overlays:
            layer.draw(frame, t)
        return frame
