"""Word tokens for TF-IDF: jieba for Chinese, plain lower-cased words otherwise; 1-2-grams."""

from __future__ import annotations

import logging
import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+", re.UNICODE)
_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return _jieba


def words(text: str) -> list[str]:
    """Split into words: jieba segments any run containing CJK characters."""
    if not text:
        return []
    text = text.lower()
    if _CJK.search(text):
        jb = _get_jieba()
        return [w for w in jb.lcut(text, HMM=True) if _WORD.search(w)]
    return _WORD.findall(text)


def ngrams(text: str, n_max: int = 2) -> list[str]:
    """Word n-grams from 1 to ``n_max``, joined by a space (the paper's jieba word 1-2-grams)."""
    toks = words(text)
    out = list(toks)
    for n in range(2, n_max + 1):
        out.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return out
