"""Level 2: the stacker over out-of-fold meta-features (plus the extras).

The paper's wide 3-layer network overfits a few hundred items and can lose to plain averaging when
the level-1 scores are already good (a user's own models' scores), so the default stacker is a chain
of rungs of growing capacity, a richer one chosen only where internal K-fold cross-validation says
it beats the simpler ones by more than its noise:

    mean:    plain averaging of branch probabilities (nothing learned; one input passes as it is)
    linear:  logit = s * sum_b w_b z_b,l + s_p * sum_b v_b p_b,l + c_l   (branch weights shared
             by all tags, softmax over the branches an item has, per-tag bias; L-BFGS)
    net:     linear + g([z_.,l, present, stats, tag_l]) + h([p_all, extras])_l
             (a tag-wise 3-layer net and the paper's wide net, both starting at zero output)
    blend:   above BLEND_MIN items, the net rung's and the paper's network's logits averaged
             (with thousands of items the paper's 512-unit network has the data it needs)

The fold nets are one module whose parameters carry a leading fold dimension; they start from
their fold's linear rung, stop at the epoch with the best *pooled* out-of-fold GAP and are averaged
(the linear rung is refitted on all items). ``kind="paper"``: the paper's network, same loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from adtag.metrics import gap_at_k
from adtag.models.base import Estimator
from adtag.models.fusions import mean_fusion
from adtag.models.meta_features import MetaFeatures
from adtag.models.nn import Dropout, fold_rows, load_numpy_state, state_to_numpy, stop_score

EPS = 1e-4
RUNGS = ("mean", "linear", "net", "blend")
BLEND_MIN = 3000  # training items from which the paper's network is trained as part of the chain
BLEND_LAG = 0.01  # how far below the net rung the blend may stay for patience epochs before its network stops
# What pooled out-of-fold GAP a richer rung must add over the one chosen so far: its margin (the net's
# stopping epoch is picked on the same predictions), and to leave a single input as it is, one standard
# deviation of the paired difference over bootstrapped items (with several inputs, averaging is an
# uncalibrated fusion: falling back to it by noise cost more).
MARGIN = {"linear": 0.0, "net": 0.002, "blend": 0.002}
LR = {"stack": 3e-3, "paper": 1e-3}  # Adam's learning rate by kind, where ``lr`` is not given
# What a model saved by an older adtag lacks, filled in on load: its rung (only nets existed), and the
# probability average's weights (zero: it had none).
LEGACY_META = {"holdout_gap": float("nan"), "cv_gap": {}, "rung": "net"}
_bce = nn.functional.binary_cross_entropy_with_logits
LEGACY_ARRAYS = {"alpha_p": lambda B: np.zeros(B, np.float32), "scale_p": lambda B: np.zeros(1, np.float32)}


def to_logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p)).astype(np.float32)


def _tensors(P: np.ndarray, present: np.ndarray, extras: np.ndarray, paper: bool) -> tuple[torch.Tensor, ...]:
    """Per item, once: branch logits (n, B, L), the branches to average (n, B), the tag-wise net's
    inputs (n, L, 2B + 3: none for the paper's network) and the wide net's (n, B L + E)."""
    z, present = torch.from_numpy(to_logits(P)), torch.from_numpy(present.astype(np.float32))
    mask = torch.where(present.sum(-1, keepdim=True) > 0, present, torch.ones_like(present))
    zt, m = (z * mask[..., None]).transpose(-1, -2), mask[:, None, :].expand(-1, z.shape[2], -1)
    big = torch.where(m > 0, zt, torch.full_like(zt, -1e4)).amax(-1, keepdim=True)
    small = torch.where(m > 0, zt, torch.full_like(zt, 1e4)).amin(-1, keepdim=True)
    mean = zt.sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
    feats = z[:, :0] if paper else torch.cat([zt / 4, m, mean / 4, big / 4, small / 4], -1)
    ex = torch.from_numpy(np.asarray(extras, dtype=np.float32).reshape(len(z), -1))
    return z, mask, feats, torch.cat([(torch.sigmoid(z) * (present if paper else mask)[..., None]).flatten(1), ex], 1)


class _Linears(nn.Module):
    """G independent linear layers side by side, one per fold net: (G, n, d_in) -> (G, n, d_out).

    The weights are stored (G, d_in, d_out), where their products and gradients run ~1.3x faster on a
    CPU (d_out 1: the other way round, BENCHMARKS.md 12m); ``state_dict`` shows them as (G, d_out, d_in)
    (``nn.Linear``'s layout, that of saved models) either way."""

    def __init__(self, G: int, d_in: int, d_out: int, zero: bool = False) -> None:
        super().__init__()
        bound = 0.0 if zero else d_in**-0.5  # nn.Linear's initialisation, or zero output
        self.t, w = d_out > 1, torch.empty(G, d_out, d_in).uniform_(-bound, bound)
        self.weight = nn.Parameter(w.transpose(1, 2).contiguous() if self.t else w)
        self.bias = nn.Parameter(torch.empty(G, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias[:, None], x, self.weight if self.t else self.weight.transpose(1, 2))

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.t:
            destination[prefix + "weight"] = destination[prefix + "weight"].transpose(1, 2)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        if self.t and prefix + "weight" in state_dict:
            state_dict[prefix + "weight"] = state_dict[prefix + "weight"].transpose(1, 2)
        super()._load_from_state_dict(state_dict, prefix, *args)


class _BranchSum(torch.autograd.Function):
    """``einsum("gbk,gbkl->gbl", w, z)`` for a few branches (B <= 4), as a product and a sum: einsum runs one
    1 x B by B x L product per item there (3-4x slower). The same numbers (to the last bit with the MKL measured:
    it adds so few terms in order; tests/test_stacker.py), and the gradient is einsum's own batched product.
    ``z``: no gradient."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return (w[..., None] * z).sum(-2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (z,) = ctx.saved_tensors
        B, L = z.shape[-2:]
        return torch.bmm(grad.reshape(-1, 1, L), z.reshape(-1, B, L).transpose(1, 2)).view(z.shape[:-1]), None


def _branch_sum(w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Each item's branch-weighted sum of z over its B branches: (G, b, B), (G, b, B, L) -> (G, b, L)."""
    return _BranchSum.apply(w, z) if z.shape[-2] <= 4 else torch.einsum("gbk,gbkl->gbl", w, z)


class _StackerNet(nn.Module):
    """G fold nets as one module: every parameter carries a leading fold dimension."""

    def __init__(self, G: int, n_branches: int, n_tags: int, n_extra: int, hidden: int, wide: int) -> None:
        super().__init__()
        P, B, L = nn.Parameter, n_branches, n_tags
        self.alpha, self.scale, self.bias = P(torch.zeros(G, B)), P(torch.ones(G, 1)), P(torch.zeros(G, L))
        # A second average, of probabilities: the better base for 0/1-heavy scores (trees, kNN).
        self.alpha_p, self.scale_p = P(torch.zeros(G, B)), P(torch.zeros(G, 1))
        self.tag_emb = P(torch.randn(G, L, 4) * 0.01)
        # Shared by all tags: few weights, regularised by weight decay (dropout here cost most).
        d, h, d_all, w, relu = 2 * B + 3 + 4, hidden, B * L + n_extra, wide, nn.ReLU()
        self.tagwise = nn.Sequential(_Linears(G, d, h), relu, _Linears(G, h, h), relu, _Linears(G, h, 1, True))
        wide_net = (Dropout(0.2), _Linears(G, d_all, w), relu, Dropout(0.5), _Linears(G, w, L, True))
        self.wide = nn.Sequential(*wide_net) if w else None
        self.linear_only = False  # the "linear" rung: the averaging part alone

    def forward(self, z: torch.Tensor, mask: torch.Tensor, feats: Any, wide_in: Any, pz: Any = None) -> torch.Tensor:
        # z: (G, b, B, L) branch logits; mask: (G, b, B) in {0, 1}; feats, wide_in: see _tensors; pz: sigmoid(z)
        w, w_p = (torch.softmax(a[:, None] + torch.log(mask + 1e-9), dim=-1) for a in (self.alpha, self.alpha_p))
        base = self.scale[:, None] * _branch_sum(w, z) + self.bias[:, None]
        base = base + self.scale_p[:, None] * _branch_sum(w_p, torch.sigmoid(z) if pz is None else pz)
        if self.linear_only:
            return base
        # the tag-wise net's first layer on [feats, tag_emb]: its two blocks of weights apart (the embedding's
        # part once per tag, not per item; no gradient through the item features)
        first, d = self.tagwise[0], feats.shape[-1]
        W = first.weight if first.t else first.weight.transpose(1, 2)  # (G, 2B + 3 + 4, hidden)
        emb = torch.baddbmm(first.bias[:, None], self.tag_emb, W[:, d:])  # (G, L, hidden)
        h = (torch.bmm(feats.flatten(1, 2), W[:, :d]).view(*feats.shape[:3], -1) + emb[:, None]).flatten(1, 2)
        out = base + self.tagwise[1:](h).view(base.shape)
        return out if self.wide is None else out + self.wide(wide_in)


class _PaperNet(nn.Module):
    """The paper's stacker: a 3-layer network with dropout on all meta-features + extras (G of them)."""

    def __init__(self, G: int, n_branches: int, n_tags: int, n_extra: int, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        d_in, h2, relu = n_branches * n_tags + n_extra, hidden // 2, nn.ReLU()
        layers = [_Linears(G, d_in, hidden), relu, Dropout(dropout), _Linears(G, hidden, h2), relu]
        self.body = nn.Sequential(*layers, Dropout(dropout), _Linears(G, h2, n_tags))

    def forward(self, z: torch.Tensor, mask: torch.Tensor, feats: torch.Tensor, wide_in: torch.Tensor) -> torch.Tensor:
        return self.body(wide_in)


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` for a (G, m) index tensor, 3-4x faster (``index_select``: one row copy at a time)."""
    return t.index_select(0, idx.flatten()).view(*idx.shape, *t.shape[1:])


def _predict(net: nn.Module, data: tuple[torch.Tensor, ...], rows: list[np.ndarray], times: int) -> np.ndarray:
    """Fold net g's logits on rows[g], summed per item over the nets / times (in chunks of rows: bounded memory)."""
    idx, out = fold_rows(rows)[0], np.zeros((len(data[0]), data[0].shape[2]), np.float32)
    if getattr(net, "linear_only", False):  # the averaging part reads no more than z and the mask
        data = (*data[:2], data[2][..., :0], data[3][:, :0])
    step = max(16, 2**22 // (len(rows) * data[0].shape[2] * (2 * data[0].shape[1] + 8)))
    with torch.inference_mode():
        for s in range(0, idx.shape[1], step):
            pred = net.eval()(*(_take(t, idx[:, s : s + step]) for t in data)).numpy()
            for g, r in enumerate(rows):
                out[r[s : s + step]] += pred[g, : len(r[s : s + step])] / times
    return out


def _copy(net: nn.Module) -> list[torch.Tensor]:
    """The values of the net's parameters (it has no buffers)."""
    return [p.detach().clone() for p in net.parameters()]


def _noise(a: np.ndarray, b: np.ndarray, Y: np.ndarray, seed: int, draws: int = 20) -> float:
    """Standard deviation of GAP(a) - GAP(b) over bootstrap resamples of the items (paired)."""
    idx = np.random.default_rng(seed).integers(0, len(Y), (draws, len(Y)))
    return float(np.std([gap_at_k(a[i], Y[i]) - gap_at_k(b[i], Y[i]) for i in idx]))


def _fit_linear(net: _StackerNet, data: tuple, yt: torch.Tensor, rows: list[np.ndarray], l2: float) -> _StackerNet:
    """Fit the averaging part (branch weights, scales, tag bias) of fold g on rows[g]: full-batch L-BFGS."""
    net.linear_only = True
    idx, params = fold_rows(rows)[0], [net.bias, net.alpha, net.alpha_p, net.scale, net.scale_p]
    z, mask, y = _take(data[0], idx), _take(data[1], idx), _take(yt, idx)
    pz = torch.sigmoid(z)  # once, not in every evaluation
    n_g = torch.tensor([[len(r)] for r in rows])  # each fold's mean loss, the repeated rows weighing 0
    wt = ((torch.arange(idx.shape[1])[None] < n_g) / n_g / y.shape[-1])[..., None].expand_as(y)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=60, history_size=10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _bce(net(z, mask, None, None, pz), y, wt, reduction="sum") + l2 * sum(
            (t * t).mean(-1).sum() for t in params[:3]
        )
        loss.backward()
        return loss

    opt.step(closure)
    net.linear_only = False
    return net


class Stacker(Estimator):
    """Fit on out-of-fold :class:`MetaFeatures` (``kind`` "stack": the chain above; "paper").

    ``chosen_``: the rung in use; ``cv_gap_``: each rung's pooled out-of-fold GAP@20 (``holdout_gap_``: the
    chosen one's); ``net_``: the fold nets as one module (None for "mean"); ``n_bags``: the internal folds.
    ``scale_``: one input, a learned rung: a monotone map of its logits onto the input's (the scale all folds share).
    ``lr``: Adam's learning rate for the net rung's or the paper's network (None: :data:`LR`, by kind).
    ``rung``: hold the chain at that rung (the richer ones are not fitted; "blend" below ``BLEND_MIN`` items lands
    on "net"); None, the default, lets the chain choose. The decision layer's K-fold refits hold the rung the
    final stacker chose, so that they vary the data and not the model class (BENCHMARKS 11e).
    """

    def __init__(
        self,
        kind: str = "stack",
        hidden: int = 16,
        wide: int = 128,
        dropout: float = 0.2,
        n_bags: int | None = None,
        lr: float | None = None,
        weight_decay: float = 1e-4,
        max_epochs: int = 100,
        patience: int = 12,
        max_items: int | None = 4000,
        seed: int = 0,
        rung: str | None = None,
    ) -> None:
        if rung is not None and rung not in RUNGS:
            raise ValueError(f"unknown rung {rung!r}; choose from {', '.join(RUNGS)}")
        self.kind, self.hidden, self.wide, self.n_bags, self.seed = kind, hidden, wide, n_bags, seed
        self.max_items, self.rung = max_items, rung
        self.dropout = dropout  # kept for saved configurations: the tag-wise net has no dropout
        self.lr, self.weight_decay, self.max_epochs, self.patience = lr, weight_decay, max_epochs, patience

    def _lr(self) -> float:
        return LR[self.kind] if self.lr is None else self.lr

    def _build(self, G: int) -> nn.Module:
        torch.manual_seed(self.seed)
        a = (G, *self.shape_)
        return _PaperNet(*a) if self.kind == "paper" else _StackerNet(*a, self.hidden, self.wide)

    def fit(self, mf: MetaFeatures, Y: np.ndarray, blend_with: tuple[float, np.ndarray] | None = None) -> Stacker:
        """``blend_with`` (kind "paper" in the chain's blend rung): the net rung's pooled out-of-fold GAP and
        logits; training stops early where the two networks' average stays hopelessly below that GAP."""
        P, present, ex, Y = mf.P, mf.present, np.asarray(mf.extras).reshape(len(mf.P), -1), np.asarray(Y, np.float32)
        if self.max_items and len(Y) > self.max_items:
            # A few thousand items pin its few shared weights down; an epoch costs items x tags.
            keep = np.sort(np.random.default_rng(self.seed).choice(len(Y), self.max_items, replace=False))
            P, present, ex, Y = P[keep], present[keep], ex[keep], Y[keep]
        n, data, yt = len(Y), _tensors(P, present, ex, self.kind == "paper"), torch.from_numpy(Y)
        if self.kind != "paper" and not self.wide:  # no wide part reads them: not gathered at every step
            data = (*data[:3], data[3][:, :0])
        self.shape_ = (B := P.shape[1], P.shape[2], ex.shape[1])
        # More folds where items are few (each validation fold must carry signal), fewer where they are many
        # (the cost is K nets); up to 3,000 items the split is drawn twice (2K nets), three times where an
        # epoch is cheap (items x tags <= 10,000): steadier stopping epochs and rung choices, more nets averaged.
        k = self.n_bags or (2 if n > 3000 else 3 if n > 1500 or self.kind == "paper" else 5)
        k, reps = max(2, min(k, n // 4)), 1 if n > 3000 or self.kind == "paper" else 3 if n * Y.shape[1] <= 10000 else 2
        folds = [np.random.default_rng(self.seed + r).permutation(n) % k for r in range(reps)]
        parts = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for fold in folds for f in range(k)]
        net, vas, self.paper_, self.scale_ = self._build(len(parts)), [va for _, va in parts], None, None
        if self.kind == "paper":  # (its out-of-fold logits kept for the chain's blend rung)
            gap, self.oof_ = self._train(net, parts, reps, data, yt, Y, (-np.inf, None), blend_with)
            self.cv_gap_ = {"net": gap}
            self.chosen_, self.net_, self.holdout_gap_ = "net", net, self.cv_gap_["net"]
            return self
        l2, oofs = 1.0 / n, {"mean": to_logits(mean_fusion(P, present))}
        cv, top = {"mean": stop_score(oofs["mean"], Y)}, RUNGS.index(self.rung or RUNGS[-1])  # the rungs tried: to top
        if top >= 1:
            oofs["linear"] = _predict(_fit_linear(net, data, yt, [tr for tr, _ in parts], l2), data, vas, reps)
            cv["linear"] = stop_score(oofs["linear"], Y)
        if top >= 2:
            start = (cv["linear"], oofs["linear"])
            cv["net"], oofs["net"] = self._train(net, parts, reps, data, yt, Y, start)
        if top >= 3 and n > BLEND_MIN and reps == 1:  # the paper's network on the same internal folds (seed, k)
            paper = Stacker("paper", n_bags=k, max_items=None, seed=self.seed, weight_decay=self.weight_decay)
            self.paper_ = paper.fit(MetaFeatures(P, present, mf.branches, ex), Y, (cv["net"], oofs["net"]))
            oofs["blend"] = (oofs["net"] + paper.oof_) / 2
            cv["blend"] = stop_score(oofs["blend"], Y)
        chosen = "mean" if self.rung is None else max(cv, key=RUNGS.index)  # held: the richest rung tried
        for rung in [r for r in RUNGS[1:] if r in cv and self.rung is None]:  # a richer rung must beat the one
            noise = _noise(oofs[rung], oofs["mean"], Y, self.seed) if chosen == "mean" and B == 1 else 0.0
            chosen = rung if cv[rung] >= cv[chosen] + max(MARGIN[rung], noise) else chosen  # chosen by its margin
        self.cv_gap_ = {r: round(float(v), 4) for r, v in cv.items()}
        self.chosen_, self.holdout_gap_ = chosen, float(cv[chosen])
        if chosen == "linear":  # few weights, no early stopping: refit on every item
            net = _fit_linear(self._build(1), data, yt, [np.arange(n)], l2)
        self.net_, net.linear_only = None if chosen == "mean" else net, chosen == "linear"
        self.paper_ = self.paper_ if chosen == "blend" else None
        if B == 1 and chosen != "mean":  # see scale_: quantiles of its training logits -> of the input's
            q, fit = np.linspace(0, 1, 201), self.decision_function(MetaFeatures(P, present, mf.branches, ex))
            self.scale_ = np.stack([np.quantile(fit, q), np.quantile(oofs["mean"], q)]).astype(np.float32)
        return self

    def _train(self, net, parts, reps: int, data, yt, Y, start: tuple, blend=None) -> tuple[float, Any]:
        """Train the G fold nets at once, each on minibatches of its own rows (one Adam on the stacked tensors
        is G Adams: the loss is the sum of the folds' mean losses); keep the best pooled out-of-fold GAP.
        ``blend`` (GAP, logits): stop once averaging with them has stayed BLEND_LAG below that GAP for patience
        epochs (the blend rung then cannot win; where it won, it dipped at most 0.7 points, BENCHMARKS 12j)."""
        torch.manual_seed(self.seed)
        G, n, rng = len(parts), len(Y), np.random.default_rng(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=self._lr(), weight_decay=self.weight_decay, fused=True)
        batch = int(np.clip((n - n * reps // G) // 16, 64, 512))  # ~16 steps an epoch at any scale
        steps = -(-(m := max(len(tr) for tr, _ in parts)) // batch)
        size = -(-m // steps)
        (best, best_oof), best_state, bad, lag, self.epochs_ = start, _copy(net), 0, 0, 0
        for _epoch in range(self.max_epochs):
            net.train()  # each fold's rows in a fresh order, topped up from its start to steps x size
            self.epochs_ += 1
            idx = fold_rows([rng.permutation(tr) for tr, _ in parts], steps * size)[0]
            for s in range(steps):
                b = idx[:, s * size : (s + 1) * size]
                opt.zero_grad()
                (G * _bce(net(*(_take(t, b) for t in data)), _take(yt, b))).backward()
                opt.step()
            if (score := stop_score(oof := _predict(net, data, [va for _, va in parts], reps), Y)) > best + 1e-5:
                best, best_state, best_oof, bad = score, _copy(net), oof, 0
            elif (bad := bad + 1) >= self.patience:
                break
            lag = 0 if blend is None or stop_score((blend[1] + oof) / 2, Y) > blend[0] - BLEND_LAG else lag + 1
            if lag >= self.patience:
                break
        with torch.no_grad():
            for p, q in zip(net.parameters(), best_state, strict=True):
                p.copy_(q)
        return float(best), best_oof

    def decision_function(self, mf: MetaFeatures) -> np.ndarray:
        if self.chosen_ == "mean":
            return to_logits(mean_fusion(mf.P, mf.present))
        G, ex, out = next(self.net_.parameters()).shape[0], np.asarray(mf.extras).reshape(len(mf.P), -1), []
        for s in range(0, len(mf.P), 4096):  # the fold nets' average, by blocks of items (bounded memory)
            data = _tensors(mf.P[s : s + 4096], mf.present[s : s + 4096], ex[s : s + 4096], self.kind == "paper")
            out.append(_predict(self.net_, data, [np.arange(len(data[0]))] * G, G))
        out, m = np.concatenate(out), self.scale_
        if self.chosen_ == "blend":  # the chain's nets and the paper's, logits averaged
            out = (out + self.paper_.decision_function(mf)) / 2
        return out if m is None else (np.interp(out, *m) + 1e-3 * out).astype(np.float32)  # (ties keep our order)

    def predict_proba(self, mf: MetaFeatures) -> np.ndarray:
        if self.chosen_ == "mean":
            return mean_fusion(mf.P, mf.present).astype(np.float32)
        return torch.sigmoid(torch.from_numpy(self.decision_function(mf))).numpy()

    def branch_weights(self) -> np.ndarray:
        """Each branch's share of the averaging part (mean over the fold models), for explanations."""
        if self.kind == "paper" or self.chosen_ == "mean":
            return np.full(self.shape_[0], 1 / self.shape_[0])
        return torch.softmax(self.net_.alpha, -1).mean(0).detach().numpy()

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """One ``bag{g}.{name}`` array per fold net and parameter (the layout of per-net models)."""
        sd = {} if self.net_ is None else state_to_numpy(self.net_)
        meta = {"shape": list(self.shape_), "holdout_gap": self.holdout_gap_, "rung": self.chosen_}
        meta["cv_gap"], arrays = self.cv_gap_, {f"bag{g}.{k}": v[g] for k, v in sd.items() for g in range(len(v))}
        arrays.update({} if self.scale_ is None else {"input_scale": self.scale_})
        if getattr(self, "paper_", None) is not None:  # the blend rung's paper network, under "paper."
            paper, meta["paper"] = self.paper_.state()
            arrays.update({f"paper.{k}": v for k, v in paper.items()})
        return arrays, meta

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Stacker:
        meta = {**LEGACY_META, **meta}
        self.shape_, self.holdout_gap_ = tuple(meta["shape"]), meta["holdout_gap"]
        self.cv_gap_, self.chosen_, self.net_, self.paper_ = meta["cv_gap"], meta["rung"], None, None
        self.scale_ = arrays.get("input_scale")  # (none before it existed, nor over several inputs)
        if "paper" in meta:
            paper = {k[len("paper.") :]: v for k, v in arrays.items() if k.startswith("paper.")}
            self.paper_ = Stacker("paper", seed=self.seed).load_state(paper, meta["paper"])
        if G := len({k.split(".", 1)[0] for k in arrays if k.startswith("bag")}):
            self.net_ = net = self._build(G)
            old = {k: f(self.shape_[0]) for k, f in LEGACY_ARRAYS.items()} if self.kind != "paper" else {}
            bags = [{k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"bag{g}.")} for g in range(G)]
            load_numpy_state(net, {k: np.stack([{**old, **bag}[k] for bag in bags]) for k in {**old, **bags[0]}})
            net.linear_only = self.chosen_ == "linear"
        return self
