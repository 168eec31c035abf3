"""Embed just the glyphs a report uses, so Chinese tags render on any machine, offline.

The viewer may have no CJK font at all; a subset of Noto Sans CJK SC holding only the
characters on the page is a few tens of kilobytes, small enough to inline as a data URI.
"""

from __future__ import annotations

import base64
import io
import logging

log = logging.getLogger(__name__)


# CJK punctuation, kana, ideographs, compatibility forms and full-width forms: the subset is
# only consulted for these, so Latin text keeps the viewer's own interface font.
CJK_RANGES = "U+2E80-9FFF, U+F900-FAFF, U+FE30-FE4F, U+FF00-FFEF"


def _needs_cjk(text: str) -> bool:
    return any(ord(c) >= 0x2E80 for c in text)


def embedded_font_css(text: str, family: str = "adtag-cjk") -> str:
    """An ``@font-face`` rule with a subset font covering ``text``; "" when not needed or possible."""
    if not _needs_cjk(text):
        return ""
    from adtag_demo.fonts import find_cjk_font

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
