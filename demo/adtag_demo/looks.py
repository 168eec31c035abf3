"""Colour grades and textures: the pixel-level signatures of style and of live action.

Grades are applied once to each pre-rendered layer, never per frame, which keeps generation
fast; captions are laid over ungraded, as an editor adds them after grading.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# 3x3 colour matrices (rows: output R, G, B) and an offset, in 0..1 units.
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
_GREY = np.full((3, 3), 1 / 3)


def grade(rgb: np.ndarray, look: str) -> np.ndarray:
    """Apply a named grade to an HxWx3 (or HxWx4, alpha kept) uint8 image."""
    if look == "none":
        return rgb
    alpha = rgb[..., 3:] if rgb.shape[-1] == 4 else None
    x = rgb[..., :3].astype(np.float32) / 255.0
    if look == "warm":
        x = x * np.array([1.12, 1.0, 0.78]) + np.array([0.06, 0.03, 0.0])
    elif look == "tech":
        x = x @ (0.55 * _GREY + 0.45 * np.eye(3)).T
        x = x * np.array([0.7, 0.95, 1.2]) + np.array([0.0, 0.04, 0.1])
    elif look == "premium":
        x = x @ (0.6 * _GREY + 0.4 * np.eye(3)).T
        x = np.clip((x - 0.5) * 1.25 + 0.42, 0, 1) * np.array([1.05, 0.97, 0.85])
    elif look == "vintage":
        x = x @ _SEPIA.T * 0.85 + 0.05
    elif look == "night":
        x = x * np.array([0.32, 0.38, 0.62]) + np.array([0.0, 0.01, 0.05])
    elif look == "vivid":  # cartoons: push saturation
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + (x - grey) * 1.35
    else:
        raise ValueError(f"unknown look {look!r}")
    out = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    return np.concatenate([out, alpha], axis=-1) if alpha is not None else out


def photographic(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make a drawn image read as a camera image: soft focus, uneven light, sensor grain."""
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius=max(1.0, min(h, w) / 300)))
    x = np.asarray(img).astype(np.float32)
    # Low-frequency light falloff and a fine grain baked in once.
    light = rng.normal(0, 1, (4, 4)).astype(np.float32)
    light = np.asarray(Image.fromarray(light).resize((w, h), Image.Resampling.BICUBIC))
    x *= 1.0 + 0.07 * light[..., None]
    x += rng.normal(0, 5.0, (h, w, 1)).astype(np.float32)
    return np.clip(x * vignette(h, w, 0.35)[..., None], 0, 255).astype(np.uint8)


def vignette(h: int, w: int, strength: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
    return 1.0 - strength * r


def grain_frames(h: int, w: int, rng: np.random.Generator, n: int = 4, sigma: float = 14.0) -> list[np.ndarray]:
    """A few film-grain frames (int16) with vertical scratches, cycled for vintage clips."""
    out = []
    for _ in range(n):
        g = rng.normal(0, sigma, (h, w, 1)).astype(np.int16)
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(0, w))
            g[:, x : x + 2] += 60
        out.append(np.repeat(g, 3, axis=2))
    return out
