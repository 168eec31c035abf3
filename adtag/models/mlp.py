"""A small MLP branch for dense modalities (frame/audio embeddings, pooled sequences)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.models.base import Estimator
from adtag.models.nn import load_numpy_state, split_holdout, state_to_numpy, to_tensor, train_early_stopped


class _Net(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_tags: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Dropout(min(dropout, 0.2)),
            nn.Linear(d_in, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_tags),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MLPTagger(Estimator):
    """One hidden layer, dropout, BCE over all tags; early stopping on an internal hold-out."""

    def __init__(
        self,
        hidden: int = 256,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 60,
        holdout: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.holdout = holdout
        self.seed = seed

    def _build(self, d_in: int, n_tags: int) -> _Net:
        torch.manual_seed(self.seed)
        return _Net(d_in, self.hidden, n_tags, self.dropout)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> MLPTagger:
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float32)
        self.net_ = self._build(X.shape[1], Y.shape[1])
        xt, yt = to_tensor(X), torch.from_numpy(Y)
        tr, va = split_holdout(len(X), self.holdout, self.seed)
        bce = nn.BCEWithLogitsLoss()
        net = self.net_
        train_early_stopped(
            net,
            lambda b: bce(net(xt[b]), yt[b]),
            lambda b: net(xt[b]).numpy(),
            tr,
            va,
            Y[va],
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            patience=6,
            seed=self.seed,
        )
        self.shape_ = (X.shape[1], Y.shape[1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = [torch.sigmoid(self.net_(to_tensor(X[i : i + 4096]))).numpy() for i in range(0, len(X), 4096)]
        return np.concatenate(out).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return state_to_numpy(self.net_), {}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MLPTagger:
        self.shape_ = (arrays["body.1.weight"].shape[1], arrays["body.4.weight"].shape[0])
        self.net_ = self._build(*self.shape_)
        load_numpy_state(self.net_, arrays)
        return self
