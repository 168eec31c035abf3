"""Render caption text to RGBA images, in a font that draws Chinese when one is installed.

Captions must be large and legible so that the OCR stage really reads them. The font is found
by ``adtag.report.fonts.find_cjk_font`` (the packaged Noto Sans CJK, then system fonts); without
any CJK font the Latin half of each caption is drawn with Pillow's built-in font.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from adtag.report.fonts import FontChoice, find_cjk_font

__all__ = ["FontChoice", "drawable", "find_cjk_font", "load_font", "render_text"]

_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


@lru_cache(maxsize=64)
def load_font(choice: FontChoice, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if choice.path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(choice.path, size, index=choice.index)


def drawable(text: str, choice: FontChoice) -> str:
    """The part of ``text`` the font can draw: everything, or the Latin half of '中文 English'."""
    if choice.cjk:
        return text
    return " ".join(_CJK.sub(" ", text).split())


def render_text(
    text: str,
    choice: FontChoice,
    size: int,
    fill: tuple[int, int, int] = (255, 255, 255),
    stroke: tuple[int, int, int] | None = (0, 0, 0),
    box: tuple[int, int, int, int] | None = None,
    max_width: int | None = None,
) -> np.ndarray:
    """Text as an HxWx4 uint8 image: outlined like real ad captions, optionally on a box.

    The size shrinks until the text fits ``max_width`` so captions are never cut off.
    """
    text = drawable(text, choice)
    while True:
        font = load_font(choice, size)
        stroke_w = max(1, size // 12) if stroke else 0
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke_w)
        pad = max(4, size // 4)
        w, h = right - left + 2 * pad, bottom - top + 2 * pad
        if max_width is None or w <= max_width or size <= 12:
            break
        size = max(12, int(size * max_width / w) - 1)
    img = Image.new("RGBA", (max(w, 1), max(h, 1)), box or (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.text(
        (pad - left, pad - top),
        text,
        font=font,
        fill=(*fill, 255),
        stroke_width=stroke_w,
        stroke_fill=(*stroke, 255) if stroke else None,
    )
    return np.asarray(img)
