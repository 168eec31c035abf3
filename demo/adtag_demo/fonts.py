"""Find a font that draws Chinese, and render caption text to RGBA images.

Captions must be large and legible so that the OCR stage really reads them. The font comes
from the ``noto-cjk-sans-otc`` package (Noto Sans CJK, installed from PyPI with adtag), then
from common system locations; without any CJK font the Latin half of each caption is drawn
with Pillow's built-in font and the fallback is reported, never hidden.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

SYSTEM_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


@dataclass(frozen=True)
class FontChoice:
    """Where the caption font comes from; ``cjk`` is False when only Latin text can be drawn."""

    path: str | None
    index: int
    name: str
    cjk: bool


def _face_index(path: str) -> int:
    """In a collection, prefer the Simplified Chinese face (Noto's 'SC')."""
    for i in range(12):
        try:
            family = ImageFont.truetype(path, 12, index=i).getname()[0]
        except OSError:
            break
        if family.endswith(" SC") or "SC" in family.split():
            return i
    return 0


def _packaged_font() -> str | None:
    try:
        import noto_cjk_sans_otc  # type: ignore[import-untyped]
    except ImportError:
        return None
    return str(noto_cjk_sans_otc.FONT_PATH)


def _fc_list_font() -> str | None:
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())
    return files[0] if files else None


def find_cjk_font(candidates: tuple[str, ...] | None = None) -> FontChoice:
    """The first usable CJK font: the packaged Noto, then system fonts, then Latin-only.

    ``candidates`` replaces the search list (tests use it to exercise the fallback).
    """
    if candidates is None:
        found = [_packaged_font(), *SYSTEM_CANDIDATES, _fc_list_font()]
        candidates = tuple(p for p in found if p)
    for path in candidates:
        try:
            index = _face_index(path)
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            continue
        if font.getbbox("中")[2] > 0:
            return FontChoice(path, index, " ".join(font.getname()), True)
    log.warning("no CJK font found: captions are drawn in English only (pip install noto-cjk-sans-otc)")
    return FontChoice(None, 0, "Pillow default (Latin only)", False)


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
