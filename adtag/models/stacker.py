"""Level 2: the stacker over out-of-fold meta-features (plus the extras).

The paper stacks with a wide 3-layer network. That overfits a few hundred items and can lose to
plain averaging when the level-1 scores are already good (a user's own models' scores), so the
default stacker is a chain of rungs of growing capacity, a richer one chosen only where an
internal K-fold cross-validation says it beats the simpler ones by more than its noise:

    mean:    plain averaging of branch probabilities (nothing learned; one input passes as it is)
    linear:  logit = s * sum_b w_b z_b,l + s_p * sum_b v_b p_b,l + c_l   (branch weights shared
             by all tags, softmax over the branches an item has, per-tag bias; L-BFGS)
    net:     linear + g([z_.,l, present, stats, tag_l]) + h([p_all, extras])_l
             (a tag-wise 3-layer net and the paper's wide net, both starting at zero output)

The fold nets train in lockstep from their fold's linear rung, stop at the epoch with the best
*pooled* out-of-fold GAP and are averaged (the linear rung is refitted on all items).
``kind="paper"`` is the paper's network, trained in the same loop from scratch.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.metrics import gap_at_k
from adtag.models.base import Estimator
from adtag.models.fusions import mean_fusion
from adtag.models.meta_features import MetaFeatures
from adtag.models.nn import load_numpy_state, state_to_numpy

EPS = 1e-4
RUNGS = ("mean", "linear", "net")
# What pooled out-of-fold GAP a richer rung must add over the rung chosen so far: its margin (the
# net's stopping epoch is picked on the same predictions, which flatters it), and to leave a single
# input as it is, one standard deviation of the paired difference over bootstrapped items (with
# several inputs, averaging is an uncalibrated fusion: falling back to it by noise cost more).
MARGIN = {"linear": 0.0, "net": 0.002}
# What a model saved by an older adtag lacks, filled in on load: its rung (only nets existed),
# and the probability average's weights (zero: it had none).
LEGACY_META = {"holdout_gap": float("nan"), "cv_gap": {}, "rung": "net"}
LEGACY_ARRAYS = {"alpha_p": lambda B: np.zeros(B, np.float32), "scale_p": lambda B: np.zeros(1, np.float32)}


def to_logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p)).astype(np.float32)


def _tensors(mf: MetaFeatures) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ex = np.asarray(mf.extras, dtype=np.float32).reshape(mf.P.shape[0], -1)
    return torch.from_numpy(to_logits(mf.P)), torch.from_numpy(mf.present.astype(np.float32)), torch.from_numpy(ex)


def _zero_last(*layers: nn.Module) -> nn.Sequential:
    """Layers whose last one starts at zero output (a correction on top of the linear rung)."""
    for p in layers[-1].parameters():
        nn.init.zeros_(p)
    return nn.Sequential(*layers)


class _StackerNet(nn.Module):
    def __init__(self, n_branches: int, n_tags: int, n_extra: int, hidden: int, wide: int) -> None:
        super().__init__()
        self.alpha, self.scale = nn.Parameter(torch.zeros(n_branches)), nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(n_tags))
        # A second average, of probabilities: the better base for 0/1-heavy scores (trees, kNN).
        self.alpha_p, self.scale_p = nn.Parameter(torch.zeros(n_branches)), nn.Parameter(torch.zeros(1))
        self.tag_emb = nn.Parameter(torch.randn(n_tags, 4) * 0.01)
        # Shared by all tags: few weights, regularised by weight decay (dropout here cost most).
        d, h, d_all, w = 2 * n_branches + 3 + 4, hidden, n_branches * n_tags + n_extra, wide
        self.tagwise = _zero_last(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))
        wide_net = (nn.Dropout(0.2), nn.Linear(d_all, w), nn.ReLU(), nn.Dropout(0.5), nn.Linear(w, n_tags)) if w else ()
        self.wide = _zero_last(*wide_net) if w else None
        self.linear_only = False  # the "linear" rung: the averaging part alone

    def forward(self, z: torch.Tensor, present: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        # z: (b, B, L) branch logits; present: (b, B) in {0, 1}; extra: (b, E)
        mask = torch.where(present.sum(1, keepdim=True) > 0, present, torch.ones_like(present))
        w = torch.softmax(self.alpha + torch.log(mask + 1e-9), dim=1)
        w_p = torch.softmax(self.alpha_p + torch.log(mask + 1e-9), dim=1)
        base = self.scale * torch.einsum("bk,bkl->bl", w, z) + self.bias
        base = base + self.scale_p * torch.einsum("bk,bkl->bl", w_p, torch.sigmoid(z))
        if self.linear_only:
            return base
        zt = (z * mask[:, :, None]).transpose(1, 2)  # (b, L, B)
        m = mask[:, None, :].expand_as(zt)
        mean = zt.sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
        big = torch.where(m > 0, zt, torch.full_like(zt, -1e4)).amax(-1, keepdim=True)
        small = torch.where(m > 0, zt, torch.full_like(zt, 1e4)).amin(-1, keepdim=True)
        emb = self.tag_emb[None].expand(z.shape[0], -1, -1)
        out = base + self.tagwise(torch.cat([zt / 4, m, mean / 4, big / 4, small / 4, emb], dim=-1)).squeeze(-1)
        if self.wide is not None:
            out = out + self.wide(torch.cat([(torch.sigmoid(z) * mask[:, :, None]).flatten(1), extra], dim=1))
        return out


class _PaperNet(nn.Module):
    """The paper's stacker: a 3-layer network with dropout on all meta-features + extras."""

    def __init__(self, n_branches: int, n_tags: int, n_extra: int, hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        d_in, h2 = n_branches * n_tags + n_extra, hidden // 2
        layers = [nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, h2), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(h2, n_tags))

    def forward(self, z: torch.Tensor, present: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([(torch.sigmoid(z) * present[:, :, None]).flatten(1), extra], dim=1))


def _noise(a: np.ndarray, b: np.ndarray, Y: np.ndarray, seed: int, draws: int = 20) -> float:
    """Standard deviation of GAP(a) - GAP(b) over bootstrap resamples of the items (paired)."""
    idx = np.random.default_rng(seed).integers(0, len(Y), (draws, len(Y)))
    return float(np.std([gap_at_k(a[i], Y[i]) - gap_at_k(b[i], Y[i]) for i in idx]))


def _gap(logits: np.ndarray, Y: np.ndarray) -> float:
    """Pooled GAP@20, ties broken toward calibrated scores (as the early stopping does)."""
    return gap_at_k(logits, Y) - 1e-3 * float(np.mean((1 / (1 + np.exp(-np.clip(logits, -50, 50))) - Y) ** 2))


def _fit_linear(net: _StackerNet, z: torch.Tensor, pr: torch.Tensor, y: torch.Tensor, l2: float) -> _StackerNet:
    """Fit the averaging part (branch weights, scales, per-tag bias) by full-batch L-BFGS."""
    net.linear_only = True
    params = [net.alpha, net.scale, net.bias, net.alpha_p, net.scale_p]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=60, history_size=10, line_search_fn="strong_wolfe")
    bce, ex = nn.BCEWithLogitsLoss(), torch.zeros(z.shape[0], 0)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = bce(net(z, pr, ex), y) + l2 * sum(t.pow(2).mean() for t in (net.bias, net.alpha, net.alpha_p))
        loss.backward()
        return loss

    opt.step(closure)
    net.linear_only = False
    return net


class Stacker(Estimator):
    """Fit on out-of-fold :class:`MetaFeatures` (``kind`` "stack": the chain above; "paper").

    After ``fit``, ``chosen_`` names the rung in use, ``cv_gap_`` each rung's pooled out-of-fold
    GAP@20 (``holdout_gap_`` the chosen one's); ``n_bags`` overrides the number of internal folds.
    """

    def __init__(
        self,
        kind: str = "stack",
        hidden: int = 16,
        wide: int = 128,
        dropout: float = 0.2,
        n_bags: int | None = None,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 100,
        patience: int = 12,
        max_items: int | None = 4000,
        seed: int = 0,
    ) -> None:
        self.kind, self.hidden, self.wide, self.n_bags, self.seed = kind, hidden, wide, n_bags, seed
        self.dropout = dropout  # kept for saved configurations: the tag-wise net has no dropout
        self.lr, self.weight_decay, self.max_epochs, self.patience = lr, weight_decay, max_epochs, patience
        self.max_items = max_items

    def _build(self, B: int, L: int, E: int, bag: int) -> nn.Module:
        torch.manual_seed(self.seed + 1000 * bag)
        return _PaperNet(B, L, E) if self.kind == "paper" else _StackerNet(B, L, E, self.hidden, self.wide)

    def fit(self, mf: MetaFeatures, Y: np.ndarray) -> Stacker:
        n = mf.P.shape[0]
        if self.max_items and n > self.max_items:
            # A few thousand items pin its few shared weights down; an epoch costs items x tags.
            keep = np.sort(np.random.default_rng(self.seed).choice(n, self.max_items, replace=False))
            mf = MetaFeatures(mf.P[keep], mf.present[keep], mf.branches, np.asarray(mf.extras)[keep])
            Y, n = np.asarray(Y)[keep], len(keep)
        Y = np.asarray(Y, dtype=np.float32)
        (z, pr, ex), yt = _tensors(mf), torch.from_numpy(Y)
        self.shape_ = (B := mf.P.shape[1], mf.P.shape[2], ex.shape[1])
        # More folds where items are few (each validation fold must carry signal), fewer where they
        # are many (the cost is K nets); up to 3,000 items the split is drawn twice (2K nets):
        # steadier stopping epochs and rung choices, and more nets averaged.
        k = self.n_bags or (2 if n > 3000 else 3 if n > 1500 or self.kind == "paper" else 5)
        k, reps = max(2, min(k, n // 4)), 2 if n <= 3000 and self.kind != "paper" else 1
        folds = [np.random.default_rng(self.seed + r).permutation(n) % k for r in range(reps)]
        parts = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for fold in folds for f in range(k)]
        nets = [self._build(*self.shape_, f) for f in range(len(parts))]
        if self.kind == "paper":
            self.cv_gap_ = {"net": self._train_nets(nets, parts, reps, z, pr, ex, yt, Y, (-np.inf, None), 1e-3)[0]}
            self.chosen_, self.nets_, self.holdout_gap_ = "net", nets, self.cv_gap_["net"]
            return self
        l2, oof, oofs = 1.0 / n, np.zeros(Y.shape, np.float32), {"mean": to_logits(mean_fusion(mf.P, mf.present))}
        for net, (tr, va) in zip(nets, parts, strict=True):
            with torch.no_grad():
                oof[va] += _fit_linear(net, z[tr], pr[tr], yt[tr], l2).eval()(z[va], pr[va], ex[va]).numpy() / reps
        cv, oofs["linear"] = {"mean": _gap(oofs["mean"], Y), "linear": _gap(oof, Y)}, oof
        cv["net"], oofs["net"] = self._train_nets(nets, parts, reps, z, pr, ex, yt, Y, (cv["linear"], oof), self.lr)
        chosen = "mean"
        for rung in RUNGS[1:]:  # a richer rung must beat the one chosen so far by its margin
            noise = _noise(oofs[rung], oofs["mean"], Y, self.seed) if chosen == "mean" and B == 1 else 0.0
            chosen = rung if cv[rung] >= cv[chosen] + max(MARGIN[rung], noise) else chosen
        self.cv_gap_ = {r: round(float(v), 4) for r, v in cv.items()}
        self.chosen_, self.holdout_gap_ = chosen, float(cv[chosen])
        if chosen == "linear":  # few weights, no early stopping: refit on every item
            nets = [_fit_linear(self._build(*self.shape_, 0), z, pr, yt, l2)]
        self.nets_ = [] if chosen == "mean" else nets
        for net in self.nets_:
            net.linear_only = chosen == "linear"
        return self

    def _train_nets(self, nets, parts, reps: int, z, pr, ex, yt, Y, start: tuple, lr: float) -> tuple[float, Any]:
        """Train the K fold nets in lockstep; keep the epoch with the best pooled out-of-fold GAP."""
        torch.manual_seed(self.seed)
        n, bce, rng = z.shape[0], nn.BCEWithLogitsLoss(), np.random.default_rng(self.seed)
        opts = [torch.optim.Adam(net.parameters(), lr=lr, weight_decay=self.weight_decay, foreach=True) for net in nets]
        batch = int(np.clip((n - n * reps // len(nets)) // 16, 64, 512))  # ~16 steps an epoch at any scale
        (best, best_oof), best_states, bad = start, [copy.deepcopy(net.state_dict()) for net in nets], 0
        for _epoch in range(self.max_epochs):
            oof = np.zeros(Y.shape, np.float32)
            for net, opt, (tr, va) in zip(nets, opts, parts, strict=True):
                net.train()
                perm = rng.permutation(tr)
                for s in range(0, len(perm), batch):
                    b = perm[s : s + batch]
                    opt.zero_grad()
                    bce(net(z[b], pr[b], ex[b]), yt[b]).backward()
                    opt.step()
                net.eval()
                with torch.no_grad():
                    oof[va] += net(z[va], pr[va], ex[va]).numpy() / reps
            score = _gap(oof, Y)
            if score > best + 1e-5:
                best, best_states, best_oof, bad = score, [copy.deepcopy(net.state_dict()) for net in nets], oof, 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        for net, state in zip(nets, best_states, strict=True):
            net.load_state_dict(state)
            net.eval()
        return float(best), best_oof

    def decision_function(self, mf: MetaFeatures) -> np.ndarray:
        if self.chosen_ == "mean":
            return to_logits(mean_fusion(mf.P, mf.present))
        with torch.no_grad():  # the fold nets' average
            return (sum(net(*_tensors(mf)) for net in self.nets_) / len(self.nets_)).numpy()

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        if self.chosen_ == "mean":
            return mean_fusion(mf.P, mf.present).astype(np.float32)
        return (1 / (1 + np.exp(-np.clip(self.decision_function(mf), -50, 50)))).astype(np.float32)

    def branch_weights(self) -> np.ndarray:
        """Each branch's share of the averaging part (mean over the fold models), for explanations."""
        if self.kind == "paper" or self.chosen_ == "mean":
            return np.full(self.shape_[0], 1 / self.shape_[0])
        return np.mean([torch.softmax(net.alpha, 0).detach().numpy() for net in self.nets_], axis=0)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        out = {f"bag{i}.{k}": v for i, net in enumerate(self.nets_) for k, v in state_to_numpy(net).items()}
        meta = {"shape": list(self.shape_), "holdout_gap": self.holdout_gap_, "rung": self.chosen_}
        return out, {**meta, "cv_gap": self.cv_gap_}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Stacker:
        meta = {**LEGACY_META, **meta}
        self.shape_, self.holdout_gap_ = tuple(meta["shape"]), meta["holdout_gap"]
        self.cv_gap_, self.chosen_ = meta["cv_gap"], meta["rung"]
        self.nets_ = []
        for bag in range(len({k.split(".", 1)[0] for k in arrays if k.startswith("bag")})):
            net, prefix = self._build(*self.shape_, bag), f"bag{bag}."
            state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            if isinstance(net, _StackerNet):
                state = {**{k: f(self.shape_[0]) for k, f in LEGACY_ARRAYS.items()}, **state}
            load_numpy_state(net, state)
            net.linear_only = self.chosen_ == "linear"
            self.nets_.append(net)
        return self
