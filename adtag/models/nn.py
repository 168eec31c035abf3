"""Torch helpers of the neural models: tensors, seeded early-stopped training, weights as numpy."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

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
            return torch.sparse_csr_tensor(
                torch.from_numpy(x.indptr.astype(np.int64)),
                torch.from_numpy(x.indices.astype(np.int64)),
                torch.from_numpy(x.data),
                size=x.shape,
            )
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def split_holdout(n: int, frac: float, seed: int, min_val: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``frac`` of ``n`` held out for early stopping."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(min_val, int(round(frac * n))) if n >= 2 * min_val else max(1, n // 4)
    return perm[n_val:], perm[:n_val]


def train_early_stopped(
    model: torch.nn.Module,
    loss_fn: Callable[[np.ndarray], torch.Tensor],
    predict_fn: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    y_val: np.ndarray,
    *,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    max_epochs: int = 100,
    patience: int = 10,
    seed: int = 0,
) -> float:
    """Adam with minibatches; keep the weights of the epoch with the best validation GAP (returned)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)

    def score() -> float:
        model.eval()
        with torch.no_grad():
            s = predict_fn(val_idx)
        model.train()
        return gap_at_k(s, y_val) - 1e-3 * float(np.mean((1 / (1 + np.exp(-s)) - y_val) ** 2))

    best_score, best_state, bad = -np.inf, None, 0
    model.train()
    for _epoch in range(max_epochs):
        perm = rng.permutation(train_idx)
        for start in range(0, len(perm), batch_size):
            batch = perm[start : start + batch_size]
            opt.zero_grad()
            loss_fn(batch).backward()
            opt.step()
        s = score()
        if s > best_score + 1e-5:
            best_score, best_state, bad = s, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return float(best_score)


class NetTagger(Estimator):
    """A tagger holding one torch network ``net_``: BCE over all tags, Adam, early stopping on a
    seeded hold-out. Subclasses give the network's logits for some rows, ``logits(rows)``."""

    holdout, weight_decay, patience = 0.15, 1e-4, 6  # defaults of settings a subclass may make parameters

    def _fit_net(self, logits: Callable[[np.ndarray], torch.Tensor], Y: np.ndarray) -> None:
        Y = np.asarray(Y, dtype=np.float32)
        yt, bce = torch.from_numpy(Y), torch.nn.BCEWithLogitsLoss()
        tr, va = split_holdout(len(Y), self.holdout, self.seed)
        train_early_stopped(
            self.net_,
            lambda b: bce(logits(b), yt[b]),
            lambda b: logits(b).numpy(),
            tr,
            va,
            Y[va],
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            patience=self.patience,
            seed=self.seed,
        )

    def _predict(self, logits: Callable[[np.ndarray], torch.Tensor], n: int, batch: int) -> np.ndarray:
        with torch.no_grad():
            out = [torch.sigmoid(logits(np.arange(s, min(s + batch, n)))).numpy() for s in range(0, n, batch)]
        return np.concatenate(out).astype(np.float32)


def state_to_numpy(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_state(module: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
    module.eval()
