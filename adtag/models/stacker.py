"""Level 2: the stacker over out-of-fold meta-features (plus the extras).

The paper stacks with a wide 3-layer network on all meta-features. That overfits a few hundred
items and can lose to plain averaging when the level-1 scores are already good (a user's own
models, passed through as they are), so the default stacker is a chain of three rungs of
growing capacity, a richer one chosen only where an internal K-fold cross-validation says so:

    mean:    plain averaging of branch probabilities                      (nothing learned)
    linear:  logit = s * sum_b w_b z_b,l + c_l                            (branch weights shared
             by all tags, softmax over the branches an item has, per-tag bias; L-BFGS)
    net:     linear + g([z_.,l, present, stats, tag_l])                   (tag-wise 3-layer net)
                    + h([p_all, extras])_l                                (the paper's wide net)

Both nets start at zero output on top of their fold's fitted linear rung; the K fold nets train
in lockstep and stop at the epoch with the best *pooled* out-of-fold GAP, one choice made on
every item rather than one per small held-out split. Prediction averages the K fold nets (the
linear rung is refitted on all items). ``kind="paper"`` is the paper's own network, kept for
the fusion table.
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
from adtag.models.nn import load_numpy_state, split_holdout, state_to_numpy, train_early_stopped

EPS = 1e-4


def to_logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p)).astype(np.float32)


class _StackerNet(nn.Module):
    def __init__(self, n_branches: int, n_tags: int, n_extra: int, hidden: int, wide: int, dropout: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(n_branches))
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(n_tags))
        # A second average, of probabilities: scores that are 0/1-heavy (tree votes, kNN) have
        # extreme logits, and plain averaging of probabilities is then the better base.
        self.alpha_p = nn.Parameter(torch.zeros(n_branches))
        self.scale_p = nn.Parameter(torch.zeros(1))
        self.tag_emb = nn.Parameter(torch.randn(n_tags, 4) * 0.01)
        d = 2 * n_branches + 3 + 4
        # Shared by all tags, so it has few weights: weight decay regularises it, and dropout
        # here (random masks over every item x tag) was the single largest cost of training.
        self.tagwise = nn.Sequential(
            nn.Linear(d, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        nn.init.zeros_(self.tagwise[-1].weight)
        nn.init.zeros_(self.tagwise[-1].bias)
        self.wide = None
        self.linear_only = False  # the "linear" rung: the averaging part alone
        if wide:
            self.wide = nn.Sequential(
                nn.Dropout(0.2),
                nn.Linear(n_branches * n_tags + n_extra, wide),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(wide, n_tags),
            )
            nn.init.zeros_(self.wide[-1].weight)
            nn.init.zeros_(self.wide[-1].bias)

    def forward(self, z: torch.Tensor, present: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        # z: (b, B, L) branch logits; present: (b, B) in {0, 1}; extra: (b, E)
        any_present = present.sum(1, keepdim=True) > 0
        mask = torch.where(any_present, present, torch.ones_like(present))
        w = torch.softmax(self.alpha + torch.log(mask + 1e-9), dim=1)
        w_p = torch.softmax(self.alpha_p + torch.log(mask + 1e-9), dim=1)
        base = self.scale * torch.einsum("bk,bkl->bl", w, z) + self.bias
        base = base + self.scale_p * torch.einsum("bk,bkl->bl", w_p, torch.sigmoid(z))
        if self.linear_only:
            return base
        zt = (z * mask[:, :, None]).transpose(1, 2)  # (b, L, B)
        m = mask[:, None, :].expand_as(zt)
        cnt = m.sum(-1, keepdim=True)
        mean = zt.sum(-1, keepdim=True) / cnt
        big = torch.where(m > 0, zt, torch.full_like(zt, -1e4)).amax(-1, keepdim=True)
        small = torch.where(m > 0, zt, torch.full_like(zt, 1e4)).amin(-1, keepdim=True)
        emb = self.tag_emb[None].expand(z.shape[0], -1, -1)
        feats = torch.cat([zt / 4, m, mean / 4, big / 4, small / 4, emb], dim=-1)
        out = base + self.tagwise(feats).squeeze(-1)
        if self.wide is not None:
            flat = (torch.sigmoid(z) * mask[:, :, None]).flatten(1)
            out = out + self.wide(torch.cat([flat, extra], dim=1))
        return out


class _PaperNet(nn.Module):
    """The paper's stacker: a 3-layer network with dropout on all meta-features + extras."""

    def __init__(self, n_branches: int, n_tags: int, n_extra: int, hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_branches * n_tags + n_extra, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, n_tags),
        )

    def forward(self, z: torch.Tensor, present: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        flat = (torch.sigmoid(z) * present[:, :, None]).flatten(1)
        return self.body(torch.cat([flat, extra], dim=1))


RUNGS = ("mean", "linear", "net")
# How much pooled out-of-fold GAP a richer rung must add over a simpler one to be chosen: the
# net's stopping epoch is picked on the same pooled predictions, which flatters it a little.
MARGIN = {"linear": 0.0, "net": 0.002}


def _gap(logits: np.ndarray, Y: np.ndarray) -> float:
    """Pooled GAP@20, ties broken toward calibrated scores (as the early stopping does)."""
    p = 1 / (1 + np.exp(-np.clip(logits, -50, 50)))
    return gap_at_k(logits, Y) - 1e-3 * float(np.mean((p - Y) ** 2))


def _fit_linear(net: _StackerNet, z: torch.Tensor, pr: torch.Tensor, y: torch.Tensor, l2: float) -> None:
    """Fit the averaging part (branch weights, scale, per-tag bias) by full-batch L-BFGS."""
    net.linear_only = True
    params = [net.alpha, net.scale, net.bias, net.alpha_p, net.scale_p]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=60, history_size=10, line_search_fn="strong_wolfe")
    bce = nn.BCEWithLogitsLoss()
    ex = torch.zeros(z.shape[0], 0)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = bce(net(z, pr, ex), y) + l2 * (
            net.bias.pow(2).mean() + net.alpha.pow(2).mean() + net.alpha_p.pow(2).mean()
        )
        loss.backward()
        return loss

    opt.step(closure)
    net.linear_only = False


class Stacker(Estimator):
    """Fit on out-of-fold :class:`MetaFeatures`: matrix ``P`` (n, B, L), presence (n, B), extras (n, E).

    ``kind="stack"`` is the default stacker above; ``kind="paper"`` the paper's wide network.
    After ``fit``, ``chosen_`` names the rung in use and ``cv_gap_`` each rung's pooled
    out-of-fold GAP@20 (``holdout_gap_`` is the chosen one's).
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
        self.kind = kind
        self.hidden = hidden
        self.wide = wide
        self.dropout = dropout
        self.n_bags = n_bags
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.max_items = max_items
        self.seed = seed

    def _build(self, B: int, L: int, E: int, bag: int) -> nn.Module:
        torch.manual_seed(self.seed + 1000 * bag)
        if self.kind == "paper":
            return _PaperNet(B, L, E)
        return _StackerNet(B, L, E, self.hidden, self.wide, self.dropout)

    def fit(self, mf: MetaFeatures, Y: np.ndarray) -> Stacker:
        P, present, extra = mf.P, mf.present, mf.extras
        if self.max_items and P.shape[0] > self.max_items:
            # Its weights are few and shared across tags: a few thousand items pin them down, and
            # the cost of an epoch grows with items x tags.
            keep = np.sort(np.random.default_rng(self.seed).choice(P.shape[0], self.max_items, replace=False))
            P, present, extra, Y = P[keep], present[keep], np.asarray(extra)[keep], np.asarray(Y)[keep]
        n, B, L = P.shape
        Y = np.asarray(Y, dtype=np.float32)
        z = torch.from_numpy(to_logits(P))
        pr = torch.from_numpy(present.astype(np.float32))
        ex = torch.from_numpy(np.asarray(extra, dtype=np.float32).reshape(n, -1))
        yt = torch.from_numpy(Y)
        self.shape_ = (B, L, ex.shape[1])
        if self.kind == "paper":
            return self._fit_paper(z, pr, ex, yt, Y)
        return self._fit_chain(P, present, z, pr, ex, yt, Y)

    def _fit_paper(self, z, pr, ex, yt, Y) -> Stacker:
        n = z.shape[0]
        bce = nn.BCEWithLogitsLoss()
        self.nets_: list[nn.Module] = []
        scores = []
        for bag in range(self.n_bags or (3 if n <= 3000 else 1)):
            net = self._build(*self.shape_, bag)
            tr, va = split_holdout(n, 0.2, self.seed + bag)
            best = train_early_stopped(
                net,
                lambda b, net=net: bce(net(z[b], pr[b], ex[b]), yt[b]),
                lambda b, net=net: net(z[b], pr[b], ex[b]).numpy(),
                tr,
                va,
                Y[va],
                lr=1e-3,
                weight_decay=self.weight_decay,
                batch_size=int(np.clip(n // 16, 64, 512)),
                max_epochs=self.max_epochs,
                patience=self.patience,
                seed=self.seed + bag,
            )
            self.nets_.append(net)
            scores.append(best)
        self.chosen_ = "net"
        self.holdout_gap_ = float(np.mean(scores))
        self.cv_gap_ = {"net": self.holdout_gap_}
        return self

    def _fit_chain(self, P, present, z, pr, ex, yt, Y) -> Stacker:
        n = z.shape[0]
        # More folds where items are few (each validation fold must carry signal), fewer where
        # they are many (the cost is K nets).
        k = self.n_bags or (5 if n <= 1500 else 3 if n <= 3000 else 2)
        k = max(2, min(k, n // 4))
        fold = np.random.default_rng(self.seed).permutation(n) % k
        l2 = 1.0 / n
        cv = {"mean": _gap(to_logits(mean_fusion(P, present)), Y)}
        nets, oof = [], np.zeros(Y.shape, np.float32)
        for f in range(k):
            tr = np.flatnonzero(fold != f)
            net = self._build(*self.shape_, f)
            _fit_linear(net, z[tr], pr[tr], yt[tr], l2)
            net.eval()
            with torch.no_grad():
                oof[fold == f] = net(z[fold == f], pr[fold == f], ex[fold == f]).numpy()
            nets.append(net)
        cv["linear"] = _gap(oof, Y)
        cv["net"], nets = self._train_nets(nets, fold, z, pr, ex, yt, Y, cv["linear"])
        chosen = "mean"
        for rung in RUNGS[1:]:  # a richer rung must beat every simpler one by its margin
            if cv[rung] >= max(cv[r] for r in RUNGS[: RUNGS.index(rung)]) + MARGIN[rung]:
                chosen = rung
        self.cv_gap_ = {r: round(float(v), 4) for r, v in cv.items()}
        self.chosen_, self.holdout_gap_ = chosen, float(cv[chosen])
        if chosen == "linear":  # few weights, no early stopping: refit on every item
            net = self._build(*self.shape_, 0)
            _fit_linear(net, z, pr, yt, l2)
            nets = [net]
        self.nets_ = [] if chosen == "mean" else nets
        self._set_linear_only()
        return self

    def _train_nets(self, nets, fold, z, pr, ex, yt, Y, start_gap: float) -> tuple[float, list]:
        """Train the K fold nets in lockstep from their linear start; keep the best pooled epoch."""
        n, k = z.shape[0], len(nets)
        bce = nn.BCEWithLogitsLoss()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        opts = [torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay) for net in nets]
        parts = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]
        batch = int(np.clip((n - n // k) // 16, 64, 512))  # ~16 steps an epoch at any scale
        best, best_states, bad = start_gap, [copy.deepcopy(net.state_dict()) for net in nets], 0
        oof = np.zeros(Y.shape, np.float32)
        for _epoch in range(self.max_epochs):
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
                    oof[va] = net(z[va], pr[va], ex[va]).numpy()
            score = _gap(oof, Y)
            if score > best + 1e-5:
                best, best_states, bad = score, [copy.deepcopy(net.state_dict()) for net in nets], 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        for net, state in zip(nets, best_states, strict=True):
            net.load_state_dict(state)
            net.eval()
        return best, nets

    def _set_linear_only(self) -> None:
        for net in self.nets_:
            if isinstance(net, _StackerNet):
                net.linear_only = self.chosen_ == "linear"

    def decision_function(self, mf: MetaFeatures) -> np.ndarray:
        P, present, extra = mf.P, mf.present, mf.extras
        if self.chosen_ == "mean":
            return to_logits(mean_fusion(P, present))
        n = P.shape[0]
        z = torch.from_numpy(to_logits(P))
        pr = torch.from_numpy(present.astype(np.float32))
        ex = torch.from_numpy(np.asarray(extra, dtype=np.float32).reshape(n, -1))
        with torch.no_grad():
            out = sum(net(z, pr, ex) for net in self.nets_) / len(self.nets_)
        return out.numpy()

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        if self.chosen_ == "mean":
            return mean_fusion(mf.P, mf.present).astype(np.float32)
        return (1 / (1 + np.exp(-np.clip(self.decision_function(mf), -50, 50)))).astype(np.float32)

    def branch_weights(self) -> np.ndarray:
        """Each branch's share of the averaging part (mean over the fold models), for explanations."""
        if self.kind == "paper" or self.chosen_ == "mean":
            return np.full(self.shape_[0], 1 / self.shape_[0])
        ws = [torch.softmax(net.alpha, 0).detach().numpy() for net in self.nets_]
        return np.mean(ws, axis=0)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        out = {}
        for i, net in enumerate(self.nets_):
            out.update({f"bag{i}.{k}": v for k, v in state_to_numpy(net).items()})
        meta = {"shape": list(self.shape_), "holdout_gap": self.holdout_gap_, "rung": self.chosen_}
        return out, {**meta, "cv_gap": self.cv_gap_}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Stacker:
        self.shape_ = tuple(meta["shape"])
        self.holdout_gap_ = meta.get("holdout_gap", float("nan"))
        self.cv_gap_ = meta.get("cv_gap", {})
        self.chosen_ = meta.get("rung", "net")  # models saved before the rungs existed hold nets only
        self.nets_ = []
        n_bags = len({k.split(".", 1)[0] for k in arrays if k.startswith("bag")})
        for bag in range(n_bags):
            net = self._build(*self.shape_, bag)
            prefix = f"bag{bag}."
            state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            if isinstance(net, _StackerNet):  # saved before the probability average existed
                state.setdefault("alpha_p", np.zeros(self.shape_[0], np.float32))
                state.setdefault("scale_p", np.zeros(1, np.float32))
            load_numpy_state(net, state)
            self.nets_.append(net)
        self._set_linear_only()
        return self
