"""A small MLP branch for dense modalities (frame/audio embeddings, pooled sequences)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.models.nn import Dropout, FoldNets, NetTagger, fit_fold_nets, to_tensor


class MLPTagger(NetTagger):
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
        self.hidden, self.dropout, self.lr, self.weight_decay = hidden, dropout, lr, weight_decay
        self.max_epochs, self.holdout, self.seed = max_epochs, holdout, seed

    def _build(self, d_in: int, n_tags: int) -> nn.Module:
        torch.manual_seed(self.seed)
        drop, h, relu = self.dropout, self.hidden, nn.ReLU()
        body = [Dropout(min(drop, 0.2)), nn.Linear(d_in, h), relu, Dropout(drop), nn.Linear(h, n_tags)]
        return nn.Sequential(OrderedDict(body=nn.Sequential(*body)))  # weights saved as body.1.weight, ...

    def fit(self, X: np.ndarray, Y: np.ndarray) -> MLPTagger:
        self.net_ = self._build(X.shape[1], Y.shape[1])
        xt = to_tensor(X)
        self._fit_net(lambda b: self.net_(xt[b]), Y)
        return self

    @staticmethod
    def fit_folds(
        models: list[MLPTagger],
        X: np.ndarray,
        Y: np.ndarray,
        rows: list[np.ndarray],
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> list[int]:
        """Fit model g on rows ``rows[g]`` of ``(X - mean[g]) / scale[g]``, all in lockstep as one batched
        network (``FoldNets``: one step of G small networks costs about one step of one; BENCHMARKS.md 12q).
        Each learns what ``fit`` alone learns (its own initialisation, hold-out, minibatch order and early
        stopping) but for dropout's random draws. Returns the epochs each model trained."""
        first = models[0]
        if any({**m.get_params(), "seed": 0} != {**first.get_params(), "seed": 0} for m in models):
            raise ValueError("fit_folds: the models differ in more than their seeds")
        for m in models:
            m.net_ = m._build(X.shape[1], Y.shape[1])
        nets = FoldNets([m.net_.body for m in models])
        xt = to_tensor(X)
        mu = torch.from_numpy(np.asarray(mean, np.float32))[:, None]
        inv = torch.from_numpy(1 / np.asarray(scale, np.float32))[:, None]

        def inputs(idx: torch.Tensor) -> torch.Tensor:
            return (xt.index_select(0, idx.flatten()).view(*idx.shape, -1) - mu).mul_(inv)

        settings = {k: getattr(first, k) for k in ("lr", "weight_decay", "max_epochs", "holdout", "patience")}
        epochs = fit_fold_nets(nets, inputs, Y, rows, [m.seed for m in models], **settings)
        for g, m in enumerate(models):
            nets.export(g, m.net_.body)
            m.net_.eval()
            m.epochs_ = epochs[g]
        return epochs

    def absorb_scaling(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Rewrite a network fitted on (X - mean) / scale to read X (its first linear layer, after dropout)."""
        layer = self.net_.body[1]
        with torch.no_grad():
            W = layer.weight.double() / torch.from_numpy(scale)[None, :]
            layer.bias.copy_(layer.bias.double() - W @ torch.from_numpy(mean))
            layer.weight.copy_(W)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._predict(lambda b: self.net_(to_tensor(X[b])), X.shape[0], 4096)

    def _rebuild(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> nn.Module:
        return self._build(arrays["body.1.weight"].shape[1], arrays["body.4.weight"].shape[0])
