"""Word splitting: long unbroken runs are cut before jieba, normal text splits as jieba does."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from adtag.data import tokenize
from adtag.data.tokenize import MAX_RUN, ngrams, words
from adtag.featurize import TextFeaturizer

from .conftest import shared_data


def _jieba_words(text: str) -> list[str]:
    """The reference: jieba on the whole text at once, as before the runs were cut."""
    jb = tokenize._get_jieba()
    return [w for w in jb.lcut(text.lower(), HMM=True) if tokenize._WORD.search(w)]


def _headlines(n: int) -> list[str]:
    path = shared_data() / "zh_text" / "tnews" / "dev.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line)["sentence"] for line in lines]


def test_real_sentences_split_exactly_as_jieba_alone():
    heads = _headlines(300)
    docs = heads + ["。".join(heads[i : i + 6]) for i in range(0, 300, 6)] + ["Hello World 2024 广告 ABC-12 测试"]
    for doc in docs:
        assert words(doc) == _jieba_words(doc), doc


def test_long_unbroken_run_is_cut_into_bounded_pieces():
    rnd = random.Random(0)
    run = "".join(chr(rnd.randint(0x4E00, 0x9FA5)) for _ in range(3 * MAX_RUN + 17))
    text = "开头，" + run + "。结尾 end"
    pieces = tokenize._pieces(text)
    assert "".join(pieces) == text
    longest = max(len(m.group()) for p in pieces for m in tokenize._JIEBA_RUN.finditer(p))
    assert longest <= MAX_RUN
    toks = words(text)
    assert "".join(toks[:-1]).endswith("结尾") and toks[-1] == "end"
    # every character of the run survives in the words, in order
    assert run in "".join(toks)


def test_short_runs_are_not_cut():
    text = "今天天气很好，" * 50
    assert tokenize._pieces(text) == [text]


def test_ngrams_pairs_neighbouring_words():
    assert ngrams("red car fast") == ["red", "car", "fast", "red car", "car fast"]
    assert words("") == [] and ngrams("") == []


def _vocab(n_docs: int, long: bool) -> dict[str, int]:
    tail = " " + " ".join(f"word{j}" for j in range(TextFeaturizer.LONG_DOC)) if long else ""
    docs = [f"common filler{i % 40}{tail}" for i in range(n_docs)]
    docs[0] += " twice"
    docs[1] += " twice"
    for k in range(3):
        docs[10 + k] += " thrice"
    return TextFeaturizer().fit(docs, np.ones(n_docs, bool)).vocabulary_


def test_large_corpora_of_long_documents_drop_ngrams_seen_in_only_two_documents():
    small, large = _vocab(300, long=True), _vocab(TextFeaturizer.LARGE_CORPUS, long=True)
    assert "twice" in small and "thrice" in small
    assert "twice" not in large and "thrice" in large and "common" in large
    assert sorted(large.values()) == list(range(len(large)))  # columns renumbered without gaps
    short = _vocab(TextFeaturizer.LARGE_CORPUS, long=False)  # titles: every n-gram seen twice counts
    assert "twice" in short and "thrice" in short
