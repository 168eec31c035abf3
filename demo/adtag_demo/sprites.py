"""Objects drawn on RGBA canvases: products, people, cartoon characters, sale bursts.

Each product category has its own shapes and palette (a lipstick, a cup of milk tea, a phone,
a pixel-art hero) so that the frame encoder sees what is being sold; live-action clips also
use real photos shipped by installed packages (a portrait, a gift pack).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from adtag_demo.pictures import fit, real_pictures


def _canvas(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    return img, ImageDraw.Draw(img)


def _ink(size: int, animated: bool) -> dict:
    return {"outline": (25, 25, 25, 255), "width": max(2, size // 60)} if animated else {}


def _shade(c: tuple[int, ...], f: float) -> tuple[int, ...]:
    return tuple(int(min(255, v * f)) for v in c[:3]) + (255,)


def _cosmetics(size: int, rng: np.random.Generator, animated: bool) -> Image.Image:
    img, d = _canvas(size)
    s = size
    ink = _ink(size, animated)
    colour = (int(rng.integers(190, 240)), int(rng.integers(20, 90)), int(rng.integers(60, 130)), 255)
    kind = int(rng.integers(3))
    if kind == 0:  # lipstick: gold case, coloured bullet with a slanted tip
        d.rectangle([0.38 * s, 0.5 * s, 0.62 * s, 0.95 * s], fill=(212, 175, 55, 255), **ink)
        d.rectangle([0.41 * s, 0.3 * s, 0.59 * s, 0.5 * s], fill=colour, **ink)
        d.polygon([(0.41 * s, 0.3 * s), (0.59 * s, 0.3 * s), (0.59 * s, 0.1 * s)], fill=colour, **ink)
    elif kind == 1:  # serum bottle with a dropper
        glass = (int(rng.integers(200, 255)), int(rng.integers(170, 220)), int(rng.integers(180, 230)), 255)
        d.rounded_rectangle([0.3 * s, 0.35 * s, 0.7 * s, 0.95 * s], radius=s // 12, fill=glass, **ink)
        d.rectangle([0.42 * s, 0.22 * s, 0.58 * s, 0.35 * s], fill=(30, 30, 30, 255), **ink)
        d.ellipse([0.4 * s, 0.05 * s, 0.6 * s, 0.25 * s], fill=colour, **ink)
        d.rectangle([0.34 * s, 0.55 * s, 0.66 * s, 0.75 * s], fill=(255, 255, 255, 255))
    else:  # compact powder
        d.ellipse([0.1 * s, 0.25 * s, 0.9 * s, 0.95 * s], fill=(235, 200, 210, 255), **ink)
        d.ellipse([0.22 * s, 0.37 * s, 0.78 * s, 0.83 * s], fill=colour, **ink)
        d.ellipse([0.1 * s, 0.02 * s, 0.9 * s, 0.5 * s], fill=(212, 175, 55, 255), **ink)
    return img


def _food(size: int, rng: np.random.Generator, animated: bool) -> Image.Image:
    img, d = _canvas(size)
    s = size
    ink = _ink(size, animated)
    kind = int(rng.integers(3))
    if kind == 0:  # milk tea with tapioca pearls and a straw
        d.rectangle([0.55 * s, 0.02 * s, 0.62 * s, 0.4 * s], fill=(230, 60, 80, 255), **ink)
        d.polygon(
            [(0.22 * s, 0.25 * s), (0.78 * s, 0.25 * s), (0.7 * s, 0.97 * s), (0.3 * s, 0.97 * s)],
            fill=(205, 160, 110, 255),
            **ink,
        )
        for _ in range(14):
            x, y = rng.uniform(0.33, 0.64) * s, rng.uniform(0.78, 0.9) * s
            d.ellipse([x, y, x + s * 0.05, y + s * 0.05], fill=(50, 30, 20, 255))
        d.rectangle([0.2 * s, 0.2 * s, 0.8 * s, 0.27 * s], fill=(250, 250, 250, 255), **ink)
    elif kind == 1:  # a steaming bowl of noodles
        d.chord([0.05 * s, 0.2 * s, 0.95 * s, 0.95 * s], 0, 180, fill=(220, 60, 40, 255), **ink)
        for i in range(6):
            y = 0.6 * s + i * 0.025 * s
            d.arc(
                [0.15 * s, y - 0.1 * s, 0.85 * s, y + 0.1 * s], 0, 180, fill=(245, 215, 120, 255), width=max(2, s // 50)
            )
        for i in range(3):
            x = (0.3 + 0.2 * i) * s
            d.arc(
                [x - 0.05 * s, 0.2 * s, x + 0.05 * s, 0.5 * s],
                90,
                270,
                fill=(235, 235, 235, 255),
                width=max(2, s // 60),
            )
    else:  # burger
        d.chord([0.1 * s, 0.2 * s, 0.9 * s, 0.8 * s], 180, 360, fill=(225, 160, 70, 255), **ink)
        d.rectangle([0.08 * s, 0.5 * s, 0.92 * s, 0.56 * s], fill=(90, 180, 60, 255))
        d.rectangle([0.1 * s, 0.56 * s, 0.9 * s, 0.68 * s], fill=(110, 60, 30, 255), **ink)
        d.rectangle([0.1 * s, 0.68 * s, 0.9 * s, 0.74 * s], fill=(250, 210, 60, 255))
        d.rounded_rectangle([0.1 * s, 0.74 * s, 0.9 * s, 0.88 * s], radius=s // 20, fill=(225, 160, 70, 255), **ink)
        for _ in range(8):
            x, y = rng.uniform(0.25, 0.7) * s, rng.uniform(0.3, 0.45) * s
            d.ellipse([x, y, x + 0.03 * s, y + 0.015 * s], fill=(250, 240, 200, 255))
    return img


def _electronics(size: int, rng: np.random.Generator, animated: bool) -> Image.Image:
    img, d = _canvas(size)
    s = size
    ink = _ink(size, animated)
    screen = (int(rng.integers(20, 90)), int(rng.integers(90, 200)), int(rng.integers(180, 255)), 255)
    kind = int(rng.integers(3))
    if kind == 0:  # phone
        d.rounded_rectangle([0.3 * s, 0.05 * s, 0.7 * s, 0.95 * s], radius=s // 14, fill=(25, 25, 30, 255), **ink)
        d.rounded_rectangle([0.33 * s, 0.1 * s, 0.67 * s, 0.9 * s], radius=s // 25, fill=screen)
        for i in range(4):
            for j in range(3):
                x, y = (0.36 + j * 0.1) * s, (0.2 + i * 0.12) * s
                d.rounded_rectangle([x, y, x + 0.07 * s, y + 0.07 * s], radius=s // 80, fill=_shade(screen, 1.6))
    elif kind == 1:  # laptop
        d.rounded_rectangle([0.15 * s, 0.2 * s, 0.85 * s, 0.68 * s], radius=s // 40, fill=(50, 50, 55, 255), **ink)
        d.rectangle([0.19 * s, 0.24 * s, 0.81 * s, 0.64 * s], fill=screen)
        d.polygon(
            [(0.1 * s, 0.7 * s), (0.9 * s, 0.7 * s), (0.98 * s, 0.8 * s), (0.02 * s, 0.8 * s)],
            fill=(170, 170, 180, 255),
            **ink,
        )
    else:  # over-ear headphones
        w = max(4, s // 14)
        d.arc([0.15 * s, 0.08 * s, 0.85 * s, 0.85 * s], 180, 360, fill=(30, 30, 30, 255), width=w)
        for x in (0.1, 0.72):
            d.rounded_rectangle([x * s, 0.42 * s, (x + 0.18) * s, 0.78 * s], radius=s // 20, fill=screen, **ink)
    return img


_HERO = [
    "..RRRR..",
    ".RRRRRR.",
    ".SSKSK..",
    "SSSSSSS.",
    ".BBRBB..",
    "BBBRRBBB",
    "SSRRRRSS",
    ".RR..RR.",
]
_PIXEL_COLOURS = {"R": (220, 40, 40), "S": (250, 200, 150), "K": (20, 20, 20), "B": (40, 80, 220)}


def _game(size: int, rng: np.random.Generator, animated: bool) -> Image.Image:
    """Pixel-art hero: large square pixels are the visual signature of games."""
    small = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    shift = rng.integers(-40, 41, 3)
    for y, row in enumerate(_HERO):
        for x, ch in enumerate(row):
            if ch in _PIXEL_COLOURS:
                c = tuple(int(np.clip(v + sh, 0, 255)) for v, sh in zip(_PIXEL_COLOURS[ch], shift, strict=True))
                small.putpixel((x, y), (*c, 255))
    return small.resize((size, size), Image.Resampling.NEAREST)


def coin(size: int) -> np.ndarray:
    img, d = _canvas(size)
    d.ellipse([0, 0, size - 1, size - 1], fill=(250, 200, 30, 255), outline=(180, 120, 0, 255), width=max(2, size // 8))
    d.rectangle([size * 0.42, size * 0.25, size * 0.58, size * 0.75], fill=(255, 235, 120, 255))
    return np.asarray(img)


_PRODUCTS = {"cosmetics": _cosmetics, "food": _food, "electronics": _electronics, "game": _game}


def product(kind: str, size: int, rng: np.random.Generator, animated: bool) -> np.ndarray:
    """A product of category ``kind`` on a transparent ``size`` x ``size`` canvas."""
    return np.asarray(_PRODUCTS[kind](size, rng, animated))


def package_photo(size: int, rng: np.random.Generator) -> np.ndarray | None:
    """The gift-pack photo that matplotlib ships, as a generic boxed product."""
    pics = real_pictures()["package"]
    if not pics:
        return None
    rgb = fit(pics[0], size, size, rng)
    return np.concatenate([rgb, np.full((size, size, 1), 255, np.uint8)], axis=2)


def person(height: int, rng: np.random.Generator, animated: bool) -> np.ndarray:
    """Someone on camera: a real portrait photo in live action, a cartoon figure otherwise."""
    pics = real_pictures()["person"]
    width = int(height * 0.75)
    if not animated and pics:
        rgb = fit(pics[0], width, height, rng)
        alpha = np.full((height, width, 1), 255, np.uint8)
        border = max(2, height // 60)
        rgb = rgb.copy()
        rgb[:border], rgb[-border:], rgb[:, :border], rgb[:, -border:] = 255, 255, 255, 255
        return np.concatenate([rgb, alpha], axis=2)
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    ink = _ink(height, True)
    skin = (int(rng.integers(200, 250)), int(rng.integers(160, 210)), int(rng.integers(120, 170)), 255)
    shirt = (int(rng.integers(30, 230)), int(rng.integers(30, 230)), int(rng.integers(30, 230)), 255)
    w, h = width, height
    d.polygon([(0.1 * w, h), (0.9 * w, h), (0.78 * w, 0.55 * h), (0.22 * w, 0.55 * h)], fill=shirt, **ink)
    d.ellipse([0.25 * w, 0.08 * h, 0.75 * w, 0.55 * h], fill=skin, **ink)
    d.chord([0.23 * w, 0.04 * h, 0.77 * w, 0.4 * h], 180, 360, fill=(60, 40, 30, 255), **ink)
    for x in (0.4, 0.6):
        d.ellipse([(x - 0.04) * w, 0.27 * h, (x + 0.04) * w, 0.33 * h], fill=(20, 20, 20, 255))
    d.arc([0.38 * w, 0.33 * h, 0.62 * w, 0.47 * h], 20, 160, fill=(150, 30, 30, 255), width=max(2, h // 70))
    return np.asarray(img)


def googly(size: int, rng: np.random.Generator) -> np.ndarray:
    """A bright blob with googly eyes: the visual gag of funny ads."""
    img, d = _canvas(size)
    colour = (int(rng.integers(120, 256)), int(rng.integers(0, 256)), int(rng.integers(0, 120)), 255)
    d.ellipse(
        [0.05 * size, 0.15 * size, 0.95 * size, 0.95 * size],
        fill=colour,
        outline=(20, 20, 20, 255),
        width=max(2, size // 30),
    )
    for x in (0.32, 0.62):
        d.ellipse(
            [(x - 0.14) * size, 0.25 * size, (x + 0.14) * size, 0.55 * size],
            fill=(255, 255, 255, 255),
            outline=(20, 20, 20, 255),
            width=2,
        )
        px = x + rng.uniform(-0.06, 0.06)
        d.ellipse([(px - 0.06) * size, 0.35 * size, (px + 0.06) * size, 0.48 * size], fill=(0, 0, 0, 255))
    d.chord([0.3 * size, 0.55 * size, 0.7 * size, 0.85 * size], 0, 180, fill=(120, 20, 20, 255))
    return np.asarray(img)


def burst(size: int, rng: np.random.Generator, points: int = 14) -> np.ndarray:
    """A red sale starburst (the text, if any, is laid on top by the caller)."""
    img, d = _canvas(size)
    c = size / 2
    angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False) + rng.uniform(0, np.pi)
    radii = np.where(np.arange(2 * points) % 2 == 0, 0.49, 0.36) * size
    pts = [(c + r * np.cos(a), c + r * np.sin(a)) for r, a in zip(radii, angles, strict=True)]
    d.polygon(pts, fill=(225, 20, 30, 255), outline=(255, 220, 0, 255), width=max(2, size // 40))
    return np.asarray(img)
