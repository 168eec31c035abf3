"""The objects that flow between the stages: featurized inputs and the paper's meta-features.

``Features`` is what the featurizers make of items (one block per modality); ``MetaFeatures``
is what the branches make of them: tag probabilities ``P`` (n, B, L) per branch, which branches
each item has, the branch names and the extras. ``fit_meta_features`` is the one K-fold loop
that produces the out-of-fold meta-features the stacker is trained on; it reuses branches found
in a cache keyed per branch (``branch_key``), so a new branch or a new fusion refits nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the branch models pull in torch; this module stays light for the CLI
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

    def select(self, cols: Sequence[int], extras: bool = True) -> MetaFeatures:
        """The meta-features of some branches (with or without the extras)."""
        cols = list(cols)
        ex = self.extras if extras else self.extras[:, :0]
        keys = [self.keys[c] for c in cols] if self.keys else []
        return MetaFeatures(self.P[:, cols], self.present[:, cols], [self.branches[c] for c in cols], ex, keys)


def branch_key(data_fingerprint: str, spec: BranchSpec, modalities: list[str]) -> str:
    """What a branch's out-of-fold predictions depend on: the data and folds, and its own inputs."""
    from adtag.models.branch import JOINT

    inputs = sorted(modalities) if spec.modality == JOINT else [spec.modality]
    return hashlib.sha256(json.dumps([data_fingerprint, spec.name, inputs]).encode()).hexdigest()


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

    ``inputs(spec)`` is a branch's feature matrix, ``present`` (n, B) which items have each
    branch's modality. ``keys`` (one per spec, see ``branch_key``) look branches up in ``cache``
    (key -> (oof, fold models)). ``map_fn(fit_branch, jobs)`` runs the branches left to fit and
    yields their results in order: in-process by default, ``partial(run_parallel, n_jobs=2)`` for
    worker processes, or any other executor (a cluster) with the same shape.
    """
    from tqdm.auto import tqdm

    from adtag.models.branch import fit_branch

    n, L = Y.shape
    keys = keys or [""] * len(specs)
    cache = cache or {}
    P = np.zeros((n, len(specs), L), np.float32)
    models: dict[str, list] = {}
    todo = []
    for b, spec in enumerate(specs):
        if keys[b] and keys[b] in cache:
            P[:, b], models[spec.name] = cache[keys[b]]
        else:
            todo.append(b)
    map_fn = map_fn or (lambda fn, jobs: (fn(*job) for job in jobs))
    jobs = [(specs[b], inputs(specs[b]), Y, present[:, b], folds, seed) for b in todo]
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="branches (K-fold)", disable=not progress)
    for b, (oof, fold_models) in zip(todo, map_fn(fit_branch, jobs), strict=True):
        P[:, b], models[specs[b].name] = oof, fold_models
        bar.update(1)
    bar.close()
    return MetaFeatures(P, present, [s.name for s in specs], extras, list(keys)), models
