"""Torch helpers of the neural models: tensors, weights as numpy, and ``NetTagger`` (one network,
BCE over all tags, Adam, early stopping on a seeded hold-out)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from adtag.metrics import gap_at_k
from adtag.models.base import Estimator


def to_tensor(x) -> torch.Tensor:
    """A dense numpy block or a scipy CSR matrix as a float32 torch tensor (sparse stays sparse)."""
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
        with warnings.catch_warnings():  # torch calls sparse CSR "beta"; we use only its matmul
            warnings.simplefilter("ignore", UserWarning)
            index = [torch.from_numpy(a.astype(np.int64)) for a in (x.indptr, x.indices)]
            return torch.sparse_csr_tensor(*index, torch.from_numpy(x.data), size=x.shape)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


class Dropout(torch.nn.Module):
    """``nn.Dropout``, its mask 2-3x cheaper to draw on a CPU (BENCHMARKS.md 12m): 15 random bits an element
    from torch's generator (``p`` rounded to a multiple of 1/32768), kept elements scaled by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cut = round(self.p * 32768)
        if not self.training or cut == 0:
            return x
        # uniform on [0, 2^31): as two int16 halves, each one's low 15 bits are uniform and independent
        bits = torch.empty(-(-x.numel() // 2), dtype=torch.int32).random_().view(torch.int16)[: x.numel()]
        keep = (bits.view(x.shape) & 0x7FFF) >= cut
        return x * keep.to(x.dtype).mul_(32768 / (32768 - cut))


def state_to_numpy(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_state(module: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
    module.eval()


class NetTagger(Estimator):
    """A tagger holding one torch network ``net_``. Subclasses build it (``_build``), give its
    logits for some rows (``logits(rows)``) and say what rebuilds it on load (``_net_meta``)."""

    holdout, weight_decay, patience = 0.15, 1e-4, 6  # defaults of settings a subclass may make parameters

    def _fit_net(self, logits: Callable[[np.ndarray], torch.Tensor], Y: np.ndarray, batch: int = 128) -> None:
        """Adam on minibatches; keep the weights of the epoch with the best GAP@20 on the hold-out."""
        Y = np.asarray(Y, dtype=np.float32)
        yt, bce, rng = torch.from_numpy(Y), torch.nn.BCEWithLogitsLoss(), np.random.default_rng(self.seed)
        perm = np.random.default_rng(self.seed).permutation(len(Y))
        n_val = max(8, int(round(self.holdout * len(Y)))) if len(Y) >= 16 else max(1, len(Y) // 4)
        tr, va = perm[n_val:], perm[:n_val]
        torch.manual_seed(self.seed)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        best, best_state, bad = -np.inf, None, 0
        for _epoch in range(self.max_epochs):
            self.net_.train()
            order = rng.permutation(tr)
            for start in range(0, len(order), batch):
                opt.zero_grad()
                bce(logits(b := order[start : start + batch]), yt[b]).backward()
                opt.step()
            self.net_.eval()
            with torch.no_grad():
                s = logits(va).numpy()
            score = gap_at_k(s, Y[va]) - 1e-3 * float(np.mean((1 / (1 + np.exp(-s)) - Y[va]) ** 2))
            if score > best + 1e-5:
                best, best_state, bad = score, copy.deepcopy(self.net_.state_dict()), 0
            elif (bad := bad + 1) >= self.patience:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()

    def _predict(self, logits: Callable[[np.ndarray], torch.Tensor], n: int, batch: int) -> np.ndarray:
        with torch.no_grad():
            out = [torch.sigmoid(logits(np.arange(s, min(s + batch, n)))).numpy() for s in range(0, n, batch)]
        return np.concatenate(out).astype(np.float32)

    def _net_meta(self) -> dict[str, Any]:
        return {}

    def _rebuild(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return state_to_numpy(self.net_), self._net_meta()

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> NetTagger:
        self.net_ = self._rebuild(arrays, meta)
        load_numpy_state(self.net_, arrays)
        return self
