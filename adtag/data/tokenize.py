"""Word tokens for TF-IDF: jieba for Chinese, plain lower-cased words otherwise; 1-2-grams.

jieba's HMM keeps a path per state and copies it at every character, so a run of unknown
characters with no break costs time quadratic in its length (40k random characters: seconds).
Runs longer than ``MAX_RUN`` are therefore cut into pieces of ``MAX_RUN`` characters before
jieba sees them; text whose runs are shorter (any normal sentence) splits exactly as before,
because jieba itself segments each run between punctuation on its own.
"""

from __future__ import annotations

import logging
import re
import sys
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+", re.UNICODE)
# jieba's own block pattern (jieba.re_han_default): it cuts each such run independently.
_JIEBA_RUN = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+", re.UNICODE)
MAX_RUN = 200
_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return _jieba


def _pieces(text: str) -> list[str]:
    """``text`` in consecutive pieces whose jieba runs are at most ``MAX_RUN`` characters."""
    out, start = [], 0
    for m in _JIEBA_RUN.finditer(text):
        a, b = m.span()
        if b - a > MAX_RUN:
            if a > start:
                out.append(text[start:a])
            out.extend(text[i : min(i + MAX_RUN, b)] for i in range(a, b, MAX_RUN))
            start = b
    if start < len(text):
        out.append(text[start:])
    return out


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    # Cached per document: training tokenizes each text for the vocabulary and again for the
    # matrix, and the ablation refits on overlapping item sets; interned words keep it small.
    text = text.lower()
    if _CJK.search(text):
        jb = _get_jieba()
        toks = [w for piece in _pieces(text) for w in jb.lcut(piece, HMM=True) if _WORD.search(w)]
    else:
        toks = _WORD.findall(text)
    return tuple(sys.intern(w) for w in toks)


def words(text: str) -> list[str]:
    """Split into words: jieba segments any run containing CJK characters."""
    if not text:
        return []
    return list(_words(text))


def ngrams(text: str, n_max: int = 2) -> list[str]:
    """Word n-grams from 1 to ``n_max``, joined by a space (the paper's jieba word 1-2-grams)."""
    toks = words(text)
    out = list(toks)
    for n in range(2, n_max + 1):
        out.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return out
