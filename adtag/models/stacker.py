"""Level 2: the stacker over out-of-fold meta-features (plus the extras).

The paper stacks with a wide 3-layer network on all meta-features. That overfits a few hundred
items and can lose to plain averaging when the branches are already good, so the default
stacker is built to start *as* averaging and move only where an inner validation split says so:

    logit = s * sum_b w_b z_b,l + c_l              (averaging of branch logits, learned weights)
          + g([z_.,l, present, stats, tag_l])      (tag-wise 3-layer net, weights shared by all tags)
          + h([p_all, extras])_l                   (the paper's wide cross-tag net, zero-initialised)

Both nets start at zero output, training is early-stopped on held-out items scored before the
first step, and a few such stackers trained on different inner splits are averaged (bagging).
``PaperStacker`` is the paper's own network, kept for the fusion table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.models.base import Estimator
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
        base = self.scale * torch.einsum("bk,bkl->bl", w, z) + self.bias
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


class Stacker(Estimator):
    """Fit on out-of-fold :class:`MetaFeatures`: matrix ``P`` (n, B, L), presence (n, B), extras (n, E).

    ``kind="stack"`` is the default stacker above; ``kind="paper"`` the paper's wide network.
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
        z = torch.from_numpy(to_logits(P))
        pr = torch.from_numpy(present.astype(np.float32))
        ex = torch.from_numpy(np.asarray(extra, dtype=np.float32).reshape(n, -1))
        yt = torch.from_numpy(np.asarray(Y, dtype=np.float32))
        bce = nn.BCEWithLogitsLoss()
        self.nets_: list[nn.Module] = []
        scores = []
        # Bagging steadies early stopping on small sets; past a few thousand items one net suffices.
        n_bags = self.n_bags or (3 if n <= 3000 else 1)
        for bag in range(n_bags):
            net = self._build(B, L, ex.shape[1], bag)
            tr, va = split_holdout(n, 0.2, self.seed + bag)
            best = train_early_stopped(
                net,
                lambda b, net=net: bce(net(z[b], pr[b], ex[b]), yt[b]),
                lambda b, net=net: net(z[b], pr[b], ex[b]).numpy(),
                tr,
                va,
                Y[va],
                lr=self.lr if self.kind != "paper" else 1e-3,
                weight_decay=self.weight_decay,
                batch_size=int(np.clip(n // 16, 64, 512)),  # ~16 steps an epoch at any scale
                max_epochs=self.max_epochs,
                patience=self.patience,
                seed=self.seed + bag,
                score_initial=self.kind != "paper",
            )
            self.nets_.append(net)
            scores.append(best)
        self.holdout_gap_ = float(np.mean(scores))
        self.shape_ = (B, L, ex.shape[1])
        return self

    def decision_function(self, mf: MetaFeatures) -> np.ndarray:
        P, present, extra = mf.P, mf.present, mf.extras
        n = P.shape[0]
        z = torch.from_numpy(to_logits(P))
        pr = torch.from_numpy(present.astype(np.float32))
        ex = torch.from_numpy(np.asarray(extra, dtype=np.float32).reshape(n, -1))
        with torch.no_grad():
            out = sum(net(z, pr, ex) for net in self.nets_) / len(self.nets_)
        return out.numpy()

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        return (1 / (1 + np.exp(-self.decision_function(mf)))).astype(np.float32)

    def branch_weights(self) -> np.ndarray:
        """Each branch's share of the averaging part (mean over bags), for explanations."""
        if self.kind == "paper":
            return np.full(self.shape_[0], 1 / self.shape_[0])
        ws = [torch.softmax(net.alpha, 0).detach().numpy() for net in self.nets_]
        return np.mean(ws, axis=0)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        out = {}
        for i, net in enumerate(self.nets_):
            out.update({f"bag{i}.{k}": v for k, v in state_to_numpy(net).items()})
        return out, {"shape": list(self.shape_), "holdout_gap": self.holdout_gap_}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Stacker:
        self.shape_ = tuple(meta["shape"])
        self.holdout_gap_ = meta.get("holdout_gap", float("nan"))
        self.nets_ = []
        n_bags = len({k.split(".", 1)[0] for k in arrays})
        for bag in range(n_bags):
            net = self._build(*self.shape_, bag)
            prefix = f"bag{bag}."
            load_numpy_state(net, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
            self.nets_.append(net)
        return self
