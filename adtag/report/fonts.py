"""Find a font that draws Chinese, and embed just the glyphs a page uses, offline.

The font comes from the ``noto-cjk-sans-otc`` package (Noto Sans CJK, installed from PyPI with
adtag), then from common system locations. The viewer may have no CJK font at all; a subset of
Noto Sans CJK SC holding only the characters on the page is a few tens of kilobytes, small
enough to inline as a data URI.
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import subprocess
from dataclasses import dataclass

from PIL import ImageFont

log = logging.getLogger(__name__)

SYSTEM_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


@dataclass(frozen=True)
class FontChoice:
    """A font file (and face in a collection); ``cjk`` is False when only Latin text can be drawn."""

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
    log.warning("no CJK font found: Chinese text cannot be drawn (pip install noto-cjk-sans-otc)")
    return FontChoice(None, 0, "Pillow default (Latin only)", False)


# CJK punctuation, kana, ideographs, compatibility forms and full-width forms: the subset is
# only consulted for these, so Latin text keeps the viewer's own interface font.
CJK_RANGES = "U+2E80-9FFF, U+F900-FAFF, U+FE30-FE4F, U+FF00-FFEF"


def _needs_cjk(text: str) -> bool:
    return any(ord(c) >= 0x2E80 for c in text)


def embedded_font_css(text: str, family: str = "adtag-cjk") -> str:
    """An ``@font-face`` rule with a subset font covering ``text``; "" when not needed or possible."""
    if not _needs_cjk(text):
        return ""
    choice = find_cjk_font()
    if choice.path is None:
        return ""
    try:
        from fontTools import subset
        from fontTools.ttLib import TTFont

        font = TTFont(choice.path, fontNumber=choice.index, lazy=True)
        options = subset.Options()
        options.hinting = False
        options.notdef_outline = True
        options.name_IDs = ["*"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(text="".join(sorted(set(text))))
        subsetter.subset(font)
        buf = io.BytesIO()
        font.save(buf)
    except Exception as exc:  # a report without the embedded font is still a report
        log.warning("could not embed a CJK font subset (%s); the viewer's fonts will be used", exc)
        return ""
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'@font-face {{ font-family: "{family}"; font-display: block; unicode-range: {CJK_RANGES}; '
        f'src: url("data:font/otf;base64,{data}") format("opentype"); }}'
    )
