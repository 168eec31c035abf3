"""What a user would otherwise reach for, with scikit-learn alone, under the same outer folds.

- ``sklearn-concat-lr``: one-vs-rest logistic regression on all modalities concatenated
  (TF-IDF word 1-2-grams for text, standardised dense features).
- ``sklearn-stacking``: one-vs-rest ``StackingClassifier`` of per-modality logistic regressions
  (5-fold ``cross_val_predict`` inside) with a logistic-regression final estimator.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import StackingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from adtag.data.manifest import Item
from adtag.data.modalities import infer_modalities, raw_values
from adtag.data.tokenize import words
from adtag.featurize import pool_sequence


class Columns(BaseEstimator, TransformerMixin):
    """Select a column slice of the concatenated matrix (one modality)."""

    def __init__(self, start: int = 0, stop: int = 0) -> None:
        self.start = start
        self.stop = stop

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X[:, self.start : self.stop]


def _blocks(items_tr: list[Item], items_te: list[Item]):
    specs = infer_modalities(items_tr + items_te)
    tr_blocks, te_blocks = [], []
    for s in specs:
        vtr, _ = raw_values(items_tr, s)
        vte, _ = raw_values(items_te, s)
        if s.kind == "text":
            vec = TfidfVectorizer(analyzer=lambda t: _grams(t), min_df=1, sublinear_tf=True)
            tr_blocks.append(vec.fit_transform(vtr))
            te_blocks.append(vec.transform(vte))
            continue
        if s.kind == "extra":
            a, b = np.nan_to_num(vtr[0]), np.nan_to_num(vte[0])
        else:
            width = s.dim * (3 if s.kind == "sequence" else 1)

            def dense(vals, width=width, kind=s.kind):
                out = np.zeros((len(vals), width), np.float32)
                for i, v in enumerate(vals):
                    if v is not None:
                        out[i] = pool_sequence(v) if kind == "sequence" else v
                return out

            a, b = dense(vtr), dense(vte)
        sc = StandardScaler().fit(a)
        tr_blocks.append(sp.csr_matrix(sc.transform(a)))
        te_blocks.append(sp.csr_matrix(sc.transform(b)))
    return tr_blocks, te_blocks


def _grams(t: str) -> list[str]:
    w = words(t)
    return w + [a + " " + b for a, b in zip(w, w[1:], strict=False)]


def sklearn_predictions(
    items_tr: list[Item], Ytr: np.ndarray, items_te: list[Item], seed: int = 0
) -> dict[str, np.ndarray]:
    tr_blocks, te_blocks = _blocks(items_tr, items_te)
    Xtr = sp.hstack(tr_blocks, format="csr")
    Xte = sp.hstack(te_blocks, format="csr")
    out = {}
    keep = Ytr.sum(0) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr = OneVsRestClassifier(LogisticRegression(max_iter=1000))
        s = np.zeros((len(items_te), Ytr.shape[1]), np.float32)
        s[:, keep] = lr.fit(Xtr, Ytr[:, keep]).predict_proba(Xte)
        out["sklearn-concat-lr"] = s
        bounds = np.cumsum([0] + [b.shape[1] for b in tr_blocks])
        est = [
            (f"m{j}", make_pipeline(Columns(int(bounds[j]), int(bounds[j + 1])), LogisticRegression(max_iter=1000)))
            for j in range(len(tr_blocks))
        ]
        stack = OneVsRestClassifier(
            StackingClassifier(
                est, final_estimator=LogisticRegression(max_iter=1000), cv=5, stack_method="predict_proba"
            )
        )
        # Tags with fewer than 5 positives cannot be split 5-fold by the stacking's stratified CV.
        ok = Ytr.sum(0) >= 5
        s = out["sklearn-concat-lr"].copy()
        if ok.any():
            s[:, ok] = stack.fit(Xtr, Ytr[:, ok]).predict_proba(Xte)
        out["sklearn-stacking"] = s
    return out
