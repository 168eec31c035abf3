"""What the featurizers make of items (``Features``) and what the branches make of them, the paper's
meta-features (``MetaFeatures``); ``fit_meta_features`` is the one K-fold loop, cached per branch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adtag.metrics import gap_at_k

if TYPE_CHECKING:  # the branch models pull in torch; this module stays light for the CLI
    from adtag.data.manifest import Item
    from adtag.models.branch import BranchSpec

# The executor seam: ``map_fn(fn, jobs)`` yields ``fn(*job)`` for each job, in order.
MapFn = Callable[[Callable[..., Any], Sequence[tuple]], Iterable[Any]]


@dataclass
class Features:
    """Featurized items: one block (dense array or CSR matrix) per modality, presence (n, M)."""

    blocks: list[Any]
    present: np.ndarray
    modalities: list[str]


@dataclass
class MetaFeatures:
    """Branch tag probabilities ``P`` (n, B, L), ``present`` (n, B), branch names, extras (n, E)."""

    P: np.ndarray
    present: np.ndarray
    branches: list[str]
    extras: np.ndarray
    keys: list[str] = field(default_factory=list)  # per-branch cache keys (out-of-fold only)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.keys).encode()).hexdigest() if self.keys else ""

    def branch_gap(self, Y: np.ndarray) -> list[float | None]:
        """Each branch's GAP@20 on the items that have it (None where no item has it)."""
        return [
            gap_at_k(self.P[r, b], Y[r]) if (r := self.present[:, b]).any() else None for b in range(len(self.branches))
        ]

    def select(self, cols: Sequence[int], extras: bool = True) -> MetaFeatures:
        """The meta-features of some branches (with or without the extras)."""
        cols = list(cols)
        ex = self.extras if extras else self.extras[:, :0]
        keys = [self.keys[c] for c in cols] if self.keys else []
        return MetaFeatures(self.P[:, cols], self.present[:, cols], [self.branches[c] for c in cols], ex, keys)


def branch_keys(
    items: list[Item], tags: list[str], folds: int, seed: int, specs: list[BranchSpec], modalities: list[str]
) -> list[str]:
    """Each branch's cache key: what its out-of-fold predictions depend on (the items and their files,
    the vocabulary and folds, and the branch's own inputs: all ``modalities`` for the joint branch)."""
    from adtag.models.branch import JOINT

    h = hashlib.sha256(json.dumps({"folds": folds, "seed": seed, "tags": tags}, sort_keys=True).encode())
    for it in items:
        h.update(json.dumps(it.to_json(), sort_keys=True, ensure_ascii=False).encode())
        for name, p in sorted({**it.features, **{f"scores.{k}": v for k, v in it.scores.items()}}.items()):
            if isinstance(p, Path) and p.exists():
                st = p.stat()
                h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
            elif isinstance(p, np.ndarray):
                h.update(p.tobytes())
    data = h.hexdigest()
    inputs = sorted(modalities)
    return [
        hashlib.sha256(json.dumps([data, s.name, inputs if s.modality == JOINT else [s.modality]]).encode()).hexdigest()
        for s in specs
    ]


def fit_meta_features(
    specs: list[BranchSpec],
    inputs: Callable[[BranchSpec], Any],
    present: np.ndarray,
    Y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    extras: np.ndarray,
    *,
    keys: list[str] | None = None,
    cache: Mapping[str, tuple[np.ndarray, list]] | None = None,
    seed: int = 0,
    map_fn: MapFn | None = None,
    progress: bool = False,
) -> tuple[MetaFeatures, dict[str, list]]:
    """Fit every branch K-fold and return the out-of-fold meta-features and each branch's fold models.

    ``inputs(spec)`` is a branch's feature matrix, ``present`` (n, B) which items have each branch's
    modality. ``keys`` (one per spec, see ``branch_keys``) look branches up in ``cache`` (key -> (oof,
    fold models)); ``map_fn`` fits the others (default: in-process; see ``adtag.engines``): fold 1 of every
    branch, which selects its settings, then the later folds as jobs of their own (all cores busy), beside
    each branch whose model fits its K folds together as one job (the MLP's batched fold networks)."""
    from tqdm.auto import tqdm

    from adtag.models.branch import fit_branch_fold, fit_branch_folds, fits_folds_together, out_of_fold, settings

    keys = keys or [""] * len(specs)
    P = np.zeros((len(Y), len(specs), Y.shape[1]), np.float32)
    models: dict[str, list] = {}
    todo = [b for b in range(len(specs)) if not (keys[b] and keys[b] in (cache or {}))]
    for b in sorted(set(range(len(specs))) - set(todo)):
        P[:, b], models[specs[b].name] = cache[keys[b]]  # type: ignore[index]
    map_fn = map_fn or (lambda fn, jobs: (fn(*job) for job in jobs))
    xs = {b: inputs(specs[b]) for b in todo}
    # branches whose model fits its K folds together (the MLP), one job per model and input width
    groups: dict[tuple, list[int]] = {}
    for b in todo:
        if fits_folds_together(specs[b].model, xs[b]):
            groups.setdefault((specs[b].model, xs[b].shape[1]), []).append(b)
    apart = [b for b in todo if not any(b in g for g in groups.values())]

    def fit(jobs: list[tuple], desc: str) -> list:
        fns = {fn for fn, *_ in jobs}
        fn = fns.pop() if len(fns) == 1 else _job  # one map of both kinds of jobs (no barrier between them)
        args = [tuple(job[1:]) if fn is not _job else job for job in jobs]
        return list(tqdm(map_fn(fn, args), total=len(args), desc=desc, disable=not progress))

    def one(b: int, *more: Any) -> tuple:
        return (fit_branch_fold, specs[b], xs[b], Y, present[:, b], folds, seed, *more)

    first = fit([one(b, 0) for b in apart], "branches, fold 1")
    later = [one(b, k, settings(first[i][1])) for i, b in enumerate(apart) for k in range(1, len(folds))]
    whole = [
        (fit_branch_folds, [specs[b] for b in bs], [xs[b] for b in bs], Y, present[:, bs], folds, seed)
        for bs in groups.values()
    ]
    done = fit(whole + later, "later folds")  # the long jobs first
    rest = iter(done[len(whole) :])
    for i, b in enumerate(apart):
        P[:, b], models[specs[b].name] = out_of_fold(Y.shape, folds, [first[i], *(next(rest) for _ in folds[1:])])
    for bs, fits in zip(groups.values(), done[: len(whole)], strict=True):
        for b, branch in zip(bs, fits, strict=True):
            P[:, b], models[specs[b].name] = out_of_fold(Y.shape, folds, branch)
    return MetaFeatures(P, present, [s.name for s in specs], extras, list(keys)), models


def _job(fn: Callable[..., Any], *args: Any) -> Any:
    """One job of a map that mixes single folds (``fit_branch_fold``) and whole branches (``fit_branch_folds``)."""
    return fn(*args)
