"""Turn a modality's raw values into a feature matrix for the branch models.

text -> TF-IDF over word 1-2-grams (sublinear tf, l2 rows); sequence (T, D) -> mean/max/std
pooling; vector -> as is; extra -> as is; scores -> the (n, L) score matrix, unscaled.
Dense blocks are standardised. Every featurizer keeps its learned state as arrays + JSON (no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from adtag.data.modalities import ModalitySpec
from adtag.data.tokenize import ngrams
from adtag.models.base import Estimator


def pool_sequence(arr: np.ndarray) -> np.ndarray:
    """(T, D) -> (3D,): mean, max and std over time (a (D,) vector counts as T=1)."""
    a = arr if arr.ndim == 2 else arr[None, :]
    return np.concatenate([a.mean(0), a.max(0), a.std(0)]).astype(np.float32)


class TextFeaturizer(Estimator):
    """TF-IDF over word 1-2-grams, the paper's input to its linear text models.

    From ``LARGE_CORPUS`` documents of ``LONG_DOC`` kept n-grams or more on average, an n-gram
    needs one document more than ``min_df``: in long documents those seen twice earn no weight
    but cost the solver a column each (realistic text: half the columns, GAP up); in short
    texts they are evidence (TNEWS titles, 9 n-grams each: -1.8 GAP points). BENCHMARKS.md 12b.
    """

    LARGE_CORPUS = 2000
    LONG_DOC = 30

    def __init__(self, max_features: int = 100_000, min_df: int = 2) -> None:
        self.max_features = max_features
        self.min_df = min_df

    def fit(self, texts: list[str], mask: np.ndarray) -> TextFeaturizer:
        docs = [t for t, m in zip(texts, mask, strict=True) if m]
        min_df = self.min_df if len(docs) >= 50 else 1
        from sklearn.feature_extraction.text import CountVectorizer  # text only: vector items never import it

        cv = CountVectorizer(analyzer=ngrams, min_df=min_df, max_features=self.max_features)
        try:
            counts = cv.fit_transform(docs)
        except ValueError:  # no document has a token
            cv = CountVectorizer(analyzer=lambda s: ["<empty>"])
            counts = cv.fit_transform(docs or [""])
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        col = np.arange(len(df))
        if len(docs) >= self.LARGE_CORPUS and counts.nnz >= self.LONG_DOC * len(docs):
            keep = np.flatnonzero(df > min_df)
            col = np.full(len(df), -1)
            col[keep] = np.arange(len(keep))
            df = df[keep]
        self.vocabulary_ = {k: int(col[v]) for k, v in cv.vocabulary_.items() if col[v] >= 0}
        self.idf_ = (np.log((1 + counts.shape[0]) / (1 + df)) + 1).astype(np.float32)
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import CountVectorizer

        cv = CountVectorizer(analyzer=ngrams, vocabulary=self.vocabulary_)
        x = cv.transform(texts).astype(np.float32)
        x.data = 1 + np.log(x.data)
        x = x @ sp.diags(self.idf_)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        return sp.csr_matrix(sp.diags(1 / norms) @ x, dtype=np.float32)


class DenseFeaturizer(Estimator):
    """Vectors, pooled sequences and extras: standardised, absent values at the mean (0)."""

    def __init__(self, kind: str = "vector", width: int = 0) -> None:
        self.kind = kind
        self.width = width  # columns after pooling (extras: the number of extra columns)

    def _raw(self, values: list[Any]) -> np.ndarray:
        if self.kind == "extra":
            mat = np.array(values[0], dtype=np.float32, copy=True)
            # Sizes and durations span decades: a signed log keeps them on one scale.
            return np.sign(mat) * np.log1p(np.abs(mat))
        mat = np.full((len(values), self.width), np.nan, dtype=np.float32)
        for i, v in enumerate(values):
            if v is not None:
                mat[i] = pool_sequence(v) if self.kind == "sequence" else v.reshape(-1)
        return mat

    def fit(self, values: list[Any], mask: np.ndarray) -> DenseFeaturizer:
        mat = self._raw(values)
        with np.errstate(all="ignore"):
            mean = np.nanmean(mat, axis=0) if np.isfinite(mat).any() else np.zeros(mat.shape[1])
            std = np.nanstd(mat, axis=0)
        self.mean_ = np.nan_to_num(mean).astype(np.float32)
        std = np.nan_to_num(std)
        self.scale_ = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        return self

    def transform(self, values: list[Any]) -> np.ndarray:
        mat = (self._raw(values) - self.mean_) / self.scale_
        return np.nan_to_num(mat, nan=0.0).astype(np.float32)


class ScoreFeaturizer(Estimator):
    """An external model's per-tag scores as an (n, L) matrix in the vocabulary's order, unchanged.

    ``tags`` is the vocabulary; absent items get zeros (the stacker sees them as absent).
    """

    def __init__(self, name: str = "scores", tags: list[str] | None = None) -> None:
        self.name = name
        self.tags = tags

    def fit(self, values: list[Any], mask: np.ndarray) -> ScoreFeaturizer:
        self.n_scored_ = int(np.asarray(mask).sum())
        return self

    def transform(self, values: list[Any]) -> np.ndarray:
        from adtag.data.scores import score_vector

        tags = list(self.tags or [])
        mat = np.zeros((len(values), len(tags)), np.float32)
        for i, v in enumerate(values):
            if v is not None:  # (item id, value) pairs from raw_values, or a bare value
                item_id, value = v if isinstance(v, tuple) else (f"#{i + 1}", v)
                mat[i] = score_vector(value, tags, f"item {item_id!r}, scores.{self.name}")
        return mat


def make_featurizer(spec: ModalitySpec) -> TextFeaturizer | DenseFeaturizer | ScoreFeaturizer:
    """The featurizer for a modality (unfitted); every featurizer fits as ``fit(values, mask)``."""
    if spec.kind == "text":
        return TextFeaturizer()
    if spec.kind == "scores":  # the vocabulary rides in ``columns`` (set by the Tagger)
        return ScoreFeaturizer(spec.name, list(spec.columns))
    width = len(spec.columns) if spec.kind == "extra" else spec.dim * (3 if spec.kind == "sequence" else 1)
    return DenseFeaturizer(spec.kind, width)


def fit_featurizer(spec: ModalitySpec, values: list[Any], mask: np.ndarray) -> tuple[Any, Any]:
    """A modality's fitted featurizer and its matrix of the same items (one job of ``Tagger.fit``: the
    text modalities' word splitting, most of featurizing, runs in the workers, each text split once)."""
    featurizer = make_featurizer(spec).fit(values, mask)
    return featurizer, featurizer.transform(values)
