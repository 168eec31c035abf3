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
        return _dropout(x, self.p) if self.training else x


def _dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    cut = round(p * 32768)
    if cut == 0:
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


def holdout_split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A network's training and early-stopping rows among its ``n`` rows (seeded)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(8, int(round(holdout * n))) if n >= 16 else max(1, n // 4)
    return perm[n_val:], perm[:n_val]


def stop_score(logits: np.ndarray, Y: np.ndarray) -> float:
    """What early stopping maximises (and the stacker's rungs are chosen on): GAP@20, ties broken toward
    calibrated scores."""
    return gap_at_k(logits, Y) - 1e-3 * float(np.mean((1 / (1 + np.exp(-np.clip(logits, -50, 50))) - Y) ** 2))


class FoldNets(torch.nn.Module):
    """G networks of one shape side by side, trained in lockstep (the K fold models of a branch): G copies
    of a ``Sequential`` of ``Linear`` / ``ReLU`` / ``Dropout`` layers, (G, b, d_in) -> (G, b, d_out). Fold g's
    parameters are row g of one (G, P) buffer ``flat`` (its gradient ``grad`` likewise), so that ``FoldAdam``
    steps every fold with a few operations; the Linear weights are held (G, in, out)."""

    def __init__(self, nets: list[torch.nn.Sequential]) -> None:
        super().__init__()
        self.kinds = [type(m).__name__ for m in nets[0]]
        self.p = [getattr(m, "p", 0.0) for m in nets[0]]
        shapes = [(m.in_features, m.out_features) for m in nets[0] if isinstance(m, torch.nn.Linear)]
        G, P = len(nets), sum(a * b + b for a, b in shapes)
        self.flat, self.grad = torch.zeros(G, P), torch.zeros(G, P)
        self.weights, self.biases, at = [], [], 0
        for a, b in shapes:
            for shape, out in (((a, b), self.weights), ((b,), self.biases)):
                part = slice(at, at + int(np.prod(shape)))
                out.append(param := torch.nn.Parameter(self.flat[:, part].view(G, *shape)))
                param.grad, at = self.grad[:, part].view(G, *shape), part.stop
        with torch.no_grad():
            for g, net in enumerate(nets):
                for i, m in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
                    self.weights[i][g].copy_(m.weight.T)
                    self.biases[i][g].copy_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = 0
        for kind, p in zip(self.kinds, self.p, strict=True):
            if kind == "Linear":
                x = torch.baddbmm(self.biases[i][:, None], x, self.weights[i])
                i += 1
            elif kind == "ReLU":
                x = torch.relu(x)
            elif kind == "Dropout":
                x = _dropout(x, p) if self.training else x
            else:
                raise ValueError(f"FoldNets: no batched form of {kind}")
        return x

    def export(self, g: int, net: torch.nn.Sequential) -> None:
        """Fold g's weights into ``net`` (one of the networks it was built from, or one of their shape)."""
        with torch.no_grad():
            for i, m in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
                m.weight.copy_(self.weights[i][g].T)
                m.bias.copy_(self.biases[i][g])


class FoldAdam:
    """Adam on ``FoldNets``'s (G, P) buffer, each fold with its own step count: ``torch.optim.Adam(fused=True)``'s
    kernel (the same update as a network fitted alone gets) on the rows of the folds ``active`` at a step; the
    others keep their parameters, moments and count. (It needs no ``torch.optim``, whose first optimizer
    imports ``torch._dynamo``: ~1 CPU-s a process.)"""

    def __init__(self, nets: FoldNets, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.p, self.g, self.m, self.v = nets.flat, nets.grad, torch.zeros_like(nets.flat), torch.zeros_like(nets.flat)
        self.steps = [torch.tensor(0.0) for _ in range(len(nets.flat))]
        self.settings = {"lr": lr, "beta1": betas[0], "beta2": betas[1], "weight_decay": weight_decay, "eps": eps}

    def step(self, active: np.ndarray) -> None:
        on = np.flatnonzero(active).tolist()
        if not on:
            return
        steps = [self.steps[g] for g in on]
        torch._foreach_add_(steps, 1)
        rows = [[t[g] for g in on] for t in (self.p, self.g, self.m, self.v)]
        torch._fused_adam_(*rows, [], steps, amsgrad=False, maximize=False, **self.settings)


class NetTagger(Estimator):
    """A tagger holding one torch network ``net_``. Subclasses build it (``_build``), give its
    logits for some rows (``logits(rows)``) and say what rebuilds it on load (``_net_meta``)."""

    holdout, weight_decay, patience = 0.15, 1e-4, 6  # defaults of settings a subclass may make parameters

    def _fit_net(self, logits: Callable[[np.ndarray], torch.Tensor], Y: np.ndarray, batch: int = 128) -> None:
        """Adam on minibatches; keep the weights of the epoch with the best GAP@20 on the hold-out."""
        Y = np.asarray(Y, dtype=np.float32)
        yt, bce, rng = torch.from_numpy(Y), torch.nn.BCEWithLogitsLoss(), np.random.default_rng(self.seed)
        tr, va = holdout_split(len(Y), self.holdout, self.seed)
        torch.manual_seed(self.seed)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        best, best_state, bad, self.epochs_ = -np.inf, None, 0, 0
        for _epoch in range(self.max_epochs):
            self.net_.train()
            self.epochs_ += 1
            order = rng.permutation(tr)
            for start in range(0, len(order), batch):
                opt.zero_grad()
                bce(logits(b := order[start : start + batch]), yt[b]).backward()
                opt.step()
            self.net_.eval()
            with torch.no_grad():
                s = logits(va).numpy()
            score = stop_score(s, Y[va])
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


def fold_rows(chunks: list[np.ndarray], m: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Row lists of unequal lengths as one (G, m) index tensor (m: the longest, at least 1), each repeated
    from its start to length m (an empty one: row 0), and their lengths."""
    m = m or max(1, *(len(c) for c in chunks))
    idx = np.stack([np.resize(np.asarray(c, np.int64), m) for c in chunks])  # (np.resize of nothing: zeros)
    return torch.from_numpy(idx), np.array([len(c) for c in chunks])


def fit_fold_nets(
    nets: FoldNets,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    Y: np.ndarray,
    rows: list[np.ndarray],
    seeds: list[int],
    *,
    lr: float,
    weight_decay: float,
    max_epochs: int,
    holdout: float,
    patience: int,
    batch: int = 128,
) -> list[int]:
    """``NetTagger._fit_net`` for G networks in lockstep: net g learns ``Y[rows[g]]`` with its own hold-out
    split, minibatch order (both from ``seeds[g]``, as a network fitted alone draws them), early stopping and
    best epoch; a net that has stopped takes no more steps. ``inputs(idx)`` gives net g's inputs of rows
    ``idx[g]`` ((G, b) -> (G, b, d)). Each net ends with the weights of its best epoch; returns the epochs
    each net trained."""
    G, L = len(rows), Y.shape[1]
    yt = torch.from_numpy(np.asarray(Y, dtype=np.float32))
    splits = [holdout_split(len(r), holdout, s) for r, s in zip(rows, seeds, strict=True)]
    tr = [r[t] for r, (t, _) in zip(rows, splits, strict=True)]
    va, n_va = fold_rows([r[v] for r, (_, v) in zip(rows, splits, strict=True)])
    rngs = [np.random.default_rng(s) for s in seeds]
    torch.manual_seed(seeds[0])
    opt = FoldAdam(nets, lr, weight_decay)
    best, best_state, bad = np.full(G, -np.inf), nets.flat.clone(), np.zeros(G, int)
    live, epochs = np.ones(G, bool), np.zeros(G, int)
    with warnings.catch_warnings():  # the gradient's (G, P) buffer seen through strided views: by design
        warnings.filterwarnings("ignore", "grad and param do not obey")
        for _epoch in range(max_epochs):
            if not live.any():
                break
            nets.train()
            orders = [rng.permutation(t) if on else t[:0] for rng, t, on in zip(rngs, tr, live, strict=True)]
            epochs += live
            for start in range(0, max(map(len, orders)), batch):
                idx, n = fold_rows([o[start : start + batch] for o in orders])
                w = torch.from_numpy((np.arange(idx.shape[1]) < n[:, None]) / np.maximum(n * L, 1)[:, None])
                nets.grad.zero_()
                logits = nets(inputs(idx))
                target = yt.index_select(0, idx.flatten()).view(logits.shape)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, target, weight=w.float()[..., None], reduction="sum"
                )
                loss.backward()
                opt.step(n > 0)
            nets.eval()
            with torch.inference_mode():
                s = nets(inputs(va)).numpy()
            for g in np.flatnonzero(live):
                score = stop_score(s[g, : n_va[g]], Y[va[g, : n_va[g]].numpy()])
                if score > best[g] + 1e-5:
                    best[g], bad[g] = score, 0
                    best_state[g] = nets.flat[g]
                else:
                    bad[g] += 1
                    live[g] = bad[g] < patience
    with torch.no_grad():
        kept = torch.from_numpy(best > -np.inf)  # a net never scored (no epoch) keeps its weights
        nets.flat[kept] = best_state[kept]
    nets.eval()
    return epochs.tolist()
