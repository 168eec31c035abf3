"""The paper's fusion baselines (its Table 4): one network over per-modality representations.

Each modality is projected to a ``d``-dim representation, the representations are fused by
concatenation, sum-pooling, max-pooling or attention (over the modalities an item has), and a
classifier head scores every tag. Trained end to end with BCE and early stopping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.models.fusions import NETWORKS
from adtag.models.meta_features import Features
from adtag.models.nn import NetTagger, to_tensor


class _FusionNet(nn.Module):
    def __init__(self, kind: str, dims: list[int], n_tags: int, d: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.kind = kind
        self.proj = nn.ParameterList([nn.Parameter(torch.randn(dm, d) * (1 / np.sqrt(dm))) for dm in dims])
        self.proj_bias = nn.Parameter(torch.zeros(len(dims), d))
        self.drop = nn.Dropout(0.3)
        if kind == "attention":
            self.att = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        d_fused = d * len(dims) if kind == "concat" else d
        self.head = nn.Sequential(nn.Linear(d_fused, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, n_tags))

    def forward(self, xs: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        hs = []
        for m, x in enumerate(xs):
            h = torch.sparse.mm(x, self.proj[m]) if x.layout != torch.strided else x @ self.proj[m]
            hs.append(torch.relu(h + self.proj_bias[m]))
        H = self.drop(torch.stack(hs, dim=1))  # (b, M, d)
        mask = present[:, :, None]
        if self.kind == "concat":
            fused = (H * mask).flatten(1)
        elif self.kind == "sum":
            fused = (H * mask).sum(1)
        elif self.kind == "max":
            fused = torch.where(mask > 0, H, torch.full_like(H, -1e4)).amax(1)
            fused = torch.where(present.sum(1, keepdim=True) > 0, fused, torch.zeros_like(fused))
        else:
            a = self.att(H).squeeze(-1) + torch.log(present + 1e-9)
            fused = (torch.softmax(a, dim=1)[:, :, None] * H).sum(1)
        return self.head(fused)


class FusionTagger(NetTagger):
    """Early/intermediate fusion baseline over :class:`Features`: ``kind`` in concat, sum, max, attention."""

    def __init__(
        self, kind: str = "concat", d: int = 128, lr: float = 1e-3, max_epochs: int = 60, seed: int = 0
    ) -> None:
        self.kind, self.d, self.lr, self.max_epochs, self.seed = kind, d, lr, max_epochs, seed

    def _build(self, dims: list[int], n_tags: int) -> _FusionNet:
        if self.kind not in NETWORKS:
            raise ValueError(f"unknown fusion network {self.kind!r}; choose from {NETWORKS}")
        torch.manual_seed(self.seed)
        self.dims_ = list(dims)
        return _FusionNet(self.kind, self.dims_, n_tags, self.d)

    def _logits(self, x: Features) -> Callable[[np.ndarray], torch.Tensor]:
        present = torch.from_numpy(x.present.astype(np.float32))
        return lambda rows: self.net_([to_tensor(b[rows]) for b in x.blocks], present[rows])

    def fit(self, x: Features, Y: np.ndarray) -> FusionTagger:
        self.net_ = self._build([b.shape[1] for b in x.blocks], Y.shape[1])
        self._fit_net(self._logits(x), Y)
        return self

    def predict_proba(self, x: Features) -> np.ndarray:
        return self._predict(self._logits(x), x.present.shape[0], 2048)

    def _net_meta(self) -> dict[str, Any]:
        return {"dims": self.dims_, "n_tags": int(self.net_.head[-1].out_features)}

    def _rebuild(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> _FusionNet:
        return self._build(meta["dims"], meta["n_tags"])
