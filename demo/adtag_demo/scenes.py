"""Backgrounds that say where an ad takes place: a room, open air, a city, nature, a studio.

Each kind has its own large-scale layout (a floor line and a window; sky over ground; a
skyline; mountains or a real landscape photo; a plain backdrop) so the frame encoder can tell
them apart. Animation draws flat colours with black outlines; live action draws the same
layouts and then makes them look photographic, and uses real photos for nature.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from adtag_demo.looks import photographic
from adtag_demo.pictures import fit, real_pictures

SCENE_KINDS = ("indoor", "outdoor", "city", "nature", "studio")


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _jitter(c: tuple[int, int, int], rng: np.random.Generator, amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)  # type: ignore[return-value]


def _vgradient(w: int, h: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return Image.fromarray(np.repeat(arr, w, axis=1).astype(np.uint8))


class _Painter:
    """ImageDraw with the outline convention of the mode (cartoon outlines or none)."""

    def __init__(self, img: Image.Image, animated: bool) -> None:
        self.draw = ImageDraw.Draw(img)
        self.line = max(2, img.height // 150) if animated else 0
        self.ink = (20, 20, 20) if animated else None

    def rect(self, box, fill) -> None:
        self.draw.rectangle(box, fill=fill, outline=self.ink, width=self.line)

    def ellipse(self, box, fill) -> None:
        self.draw.ellipse(box, fill=fill, outline=self.ink, width=self.line)

    def poly(self, pts, fill) -> None:
        self.draw.polygon(pts, fill=fill, outline=self.ink, width=self.line)


def _indoor(w: int, h: int, rng: np.random.Generator, animated: bool, night: bool) -> Image.Image:
    wall = _rgb(rng, 150, 235)
    img = _vgradient(w, h, _jitter(wall, rng), wall)
    p = _Painter(img, animated)
    floor_y = int(h * rng.uniform(0.62, 0.72))
    wood = _rgb(rng, 90, 160)
    p.poly([(0, floor_y), (w, floor_y), (w, h), (0, h)], wood)
    for i in range(1, 9):  # floorboards converging to a vanishing point: a room's perspective
        x = w * i / 9
        p.draw.line(
            [(w / 2 + (x - w / 2) * 0.35, floor_y), (x + (x - w / 2) * 0.6, h)], fill=_jitter(wood, rng, 30), width=2
        )
    wx, ww, wh = int(w * rng.uniform(0.08, 0.5)), int(w * rng.uniform(0.2, 0.3)), int(h * rng.uniform(0.28, 0.38))
    wy = int(h * 0.12)
    sky = (25, 30, 70) if night else (150, 200, 245)
    p.rect([wx, wy, wx + ww, wy + wh], sky)
    p.draw.rectangle([wx, wy, wx + ww, wy + wh], outline=(245, 245, 245), width=max(3, h // 80))
    p.draw.line([(wx + ww // 2, wy), (wx + ww // 2, wy + wh)], fill=(245, 245, 245), width=max(3, h // 90))
    p.draw.line([(wx, wy + wh // 2), (wx + ww, wy + wh // 2)], fill=(245, 245, 245), width=max(3, h // 90))
    if rng.random() < 0.7:  # a picture frame on the wall
        fx = int(w * rng.uniform(0.6, 0.85))
        p.rect([fx, int(h * 0.15), fx + w // 9, int(h * 0.15) + h // 6], _rgb(rng, 40, 220))
    sofa = _rgb(rng, 60, 200)
    sx = int(w * rng.uniform(0.05, 0.55))
    p.rect([sx, floor_y - h // 7, sx + w // 3, floor_y + h // 12], sofa)
    p.rect([sx, floor_y - h // 4, sx + w // 3, floor_y - h // 7], _jitter(sofa, rng))
    lx = int(w * rng.uniform(0.7, 0.92))
    p.draw.line([(lx, floor_y + h // 12), (lx, floor_y - h // 4)], fill=(50, 50, 50), width=max(2, h // 120))
    p.poly(
        [(lx - w // 22, floor_y - h // 4), (lx + w // 22, floor_y - h // 4), (lx, floor_y - h // 3)], (250, 220, 150)
    )
    return img


def _sky(
    w: int, h: int, rng: np.random.Generator, animated: bool, night: bool, horizon: float
) -> tuple[Image.Image, _Painter]:
    if night:
        img = _vgradient(w, h, (5, 8, 30), (30, 40, 90))
    else:
        img = _vgradient(w, h, _jitter((70, 140, 230), rng), _jitter((190, 225, 250), rng))
    p = _Painter(img, animated)
    if night:
        for _ in range(40):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, int(h * horizon)))
            p.draw.point([(x, y), (x + 1, y), (x, y + 1)], fill=(255, 255, 230))
        mx, my, r = int(w * rng.uniform(0.6, 0.9)), int(h * 0.15), h // 14
        p.ellipse([mx - r, my - r, mx + r, my + r], (245, 245, 210))
    else:
        sx, sy, r = int(w * rng.uniform(0.1, 0.9)), int(h * rng.uniform(0.08, 0.2)), h // 12
        p.ellipse([sx - r, sy - r, sx + r, sy + r], (255, 230, 120))
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = int(rng.integers(0, w)), int(h * rng.uniform(0.05, horizon * 0.6))
            cw, ch = int(w * rng.uniform(0.08, 0.18)), int(h * rng.uniform(0.04, 0.08))
            p.ellipse([cx, cy, cx + cw, cy + ch], (250, 250, 252))
    return img, p


def _tree(p: _Painter, x: int, base: int, size: int, rng: np.random.Generator) -> None:
    p.rect([x - size // 10, base - size // 2, x + size // 10, base], (100, 70, 40))
    p.ellipse([x - size // 2, base - size * 3 // 2, x + size // 2, base - size // 3], _jitter((50, 140, 60), rng, 25))


def _outdoor(w: int, h: int, rng: np.random.Generator, animated: bool, night: bool) -> Image.Image:
    horizon = rng.uniform(0.55, 0.7)
    img, p = _sky(w, h, rng, animated, night, horizon)
    gy = int(h * horizon)
    ground = (40, 70, 45) if night else _jitter((95, 170, 80), rng, 25)
    p.poly([(0, gy), (w, gy), (w, h), (0, h)], ground)
    path = (120, 110, 95) if night else (205, 190, 150)
    p.poly([(w * 0.45, gy), (w * 0.55, gy), (w * 0.8, h), (w * 0.2, h)], path)  # a path into the distance
    for _ in range(int(rng.integers(2, 6))):
        _tree(p, int(rng.integers(0, w)), gy + int(rng.integers(0, h // 10)), int(h * rng.uniform(0.12, 0.2)), rng)
    return img


def _city(w: int, h: int, rng: np.random.Generator, animated: bool, night: bool) -> Image.Image:
    horizon = rng.uniform(0.75, 0.82)
    img, p = _sky(w, h, rng, animated, night, horizon)
    gy = int(h * horizon)
    x = -int(rng.integers(0, w // 20))
    lit = (255, 215, 110) if night else (170, 205, 235)
    dark = (35, 35, 50) if night else (95, 110, 130)
    while x < w:
        bw = int(w * rng.uniform(0.07, 0.14))
        top = int(h * rng.uniform(0.15, 0.55))
        p.rect([x, top, x + bw, gy], _jitter(dark, rng, 20))
        step_x, step_y = max(6, bw // 5), max(8, h // 28)
        for wy in range(top + step_y // 2, gy - step_y, step_y):
            for wx in range(x + step_x // 2, x + bw - step_x // 2, step_x):
                if rng.random() < (0.55 if night else 0.9):
                    p.draw.rectangle([wx, wy, wx + step_x // 2, wy + step_y // 2], fill=lit)
        x += bw + int(rng.integers(0, w // 40))
    p.rect([0, gy, w, h], (60, 60, 65))
    for dx in range(0, w, w // 8):  # lane markings
        p.draw.rectangle([dx, (gy + h) // 2 - 2, dx + w // 16, (gy + h) // 2 + 2], fill=(240, 240, 240))
    return img


def _nature(w: int, h: int, rng: np.random.Generator, animated: bool, night: bool) -> Image.Image:
    photos = real_pictures()["nature"]
    if not animated and photos and rng.random() < 0.75:
        return Image.fromarray(fit(photos[int(rng.integers(len(photos)))], w, h, rng))
    horizon = rng.uniform(0.6, 0.72)
    img, p = _sky(w, h, rng, animated, night, horizon)
    gy = int(h * horizon)
    for layer, colour in enumerate(((110, 130, 160), (80, 120, 110), (60, 110, 70))):
        pts = [(0, gy)]
        for i in range(7):
            pts.append((w * (i + 0.5) / 6, h * (rng.uniform(0.2, 0.45) + 0.08 * layer)))
        pts += [(w, gy), (w, h), (0, h)]
        p.poly(pts, _jitter(colour, rng, 15))
    p.poly([(0, gy + h // 12), (w, gy + h // 15), (w, h), (0, h)], (70, 130, 190))  # a lake
    for _ in range(int(rng.integers(3, 7))):
        _tree(p, int(rng.integers(0, w)), gy + int(rng.integers(0, h // 20)), int(h * rng.uniform(0.1, 0.18)), rng)
    return img


def _studio(w: int, h: int, rng: np.random.Generator, animated: bool, night: bool) -> Image.Image:
    a = _rgb(rng, 40, 250)
    b = _jitter(a, rng, 70)
    img = _vgradient(w, h, a, b)
    if not animated:  # a soft spotlight on the backdrop
        arr = np.asarray(img).astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        spot = np.exp(-(((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h / 2) / (0.5 * h)) ** 2))
        img = Image.fromarray(np.clip(arr * (0.65 + 0.5 * spot[..., None]), 0, 255).astype(np.uint8))
    return img


_DRAW = {"indoor": _indoor, "outdoor": _outdoor, "city": _city, "nature": _nature, "studio": _studio}


def draw_scene(kind: str, width: int, height: int, rng: np.random.Generator, animated: bool, night: bool) -> np.ndarray:
    """An HxWx3 uint8 background of ``kind``."""
    img = _DRAW[kind](width, height, rng, animated, night)
    rgb = np.asarray(img.convert("RGB"))
    return rgb if animated else photographic(rgb, rng)
