"""The trained system: featurizers -> K-fold branches -> stacker (or a fusion baseline).

``Tagger`` is what ``adtag train`` fits, saves (JSON config + safetensors weights, no pickle)
and ``adtag predict`` / ``adtag tag`` / ``adtag serve`` load.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from adtag import __version__
from adtag.data.manifest import Item
from adtag.data.modalities import ModalitySpec, infer_modalities, raw_values
from adtag.data.vocab import Vocabulary
from adtag.errors import AdtagError
from adtag.metrics import gap_at_k
from adtag.models.branch import DEFAULT_MODELS, JOINT, BranchSpec, fit_branch, make_folds, predict_branch
from adtag.models.featurize import fit_featurizer
from adtag.models.fusion import FUSIONS, FusionTagger
from adtag.models.parallel import run_parallel
from adtag.models.stacker import Stacker, mean_fusion

STACKERS = ("stack", "paper", "mean")
ALL_FUSIONS = STACKERS + FUSIONS


@dataclass
class TrainConfig:
    """Everything that defines a run; saved next to the model so any result can be reproduced."""

    fusion: str = "stack"
    folds: int = 5
    seed: int = 0
    modalities: list[str] | None = None
    branch_models: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_MODELS.items()})
    joint: bool = True
    stacker: dict[str, Any] = field(default_factory=dict)
    encoders: dict[str, Any] | None = None  # recorded by extraction, used to tag raw videos
    jobs: int = 2  # branches fitted in parallel processes (one thread each)

    def validate(self) -> None:
        if self.fusion not in ALL_FUSIONS:
            raise AdtagError(f"unknown fusion {self.fusion!r}; choose from {', '.join(ALL_FUSIONS)}")
        if self.folds < 2:
            raise AdtagError("--folds must be at least 2")


def _blocks_present(n: int, masks: dict[str, np.ndarray], specs: list[ModalitySpec]) -> np.ndarray:
    return np.stack([masks[s.name] for s in specs], axis=1) if specs else np.zeros((n, 0), bool)


def joint_matrix(blocks: dict[str, Any], specs: list[ModalitySpec]) -> sp.csr_matrix:
    """Early fusion: all modalities side by side, each block scaled to a unit-size row."""
    parts = []
    for s in specs:
        b = blocks[s.name]
        if sp.issparse(b):
            parts.append(b)
        else:
            parts.append(sp.csr_matrix(b / np.sqrt(max(1, b.shape[1]))))
    return sp.hstack(parts, format="csr", dtype=np.float32)


class Tagger:
    """Fit with :meth:`fit`, persist with :meth:`save`, restore with :meth:`load`."""

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    # ---------------------------------------------------------------- features
    def _featurize(self, items: list[Item]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        blocks, masks = {}, {}
        for spec in self.specs_:
            vals, mask = raw_values(items, spec)
            blocks[spec.name] = self.featurizers_[spec.name].transform(vals)
            masks[spec.name] = mask
        return blocks, masks

    def _extras(self, blocks: dict[str, Any], n: int) -> np.ndarray:
        ex = [s.name for s in self.specs_ if s.kind == "extra"]
        return np.asarray(blocks[ex[0]], dtype=np.float32) if ex else np.zeros((n, 0), np.float32)

    def branch_specs(self) -> list[BranchSpec]:
        out = []
        for s in self.specs_:
            out += [BranchSpec(s.name, m) for m in self.config.branch_models.get(s.kind, [])]
        if self.config.joint and len(self.specs_) > 1:
            out += [BranchSpec(JOINT, m) for m in self.config.branch_models.get(JOINT, ["lr"])]
        return out

    def _branch_input(self, spec: BranchSpec, blocks: dict[str, Any]):
        return joint_matrix(blocks, self.specs_) if spec.modality == JOINT else blocks[spec.modality]

    def _present(self, spec: BranchSpec, masks: dict[str, np.ndarray], n: int) -> np.ndarray:
        return np.ones(n, bool) if spec.modality == JOINT else masks[spec.modality]

    # ---------------------------------------------------------------- training
    def fit(
        self,
        items: list[Item],
        vocab: Vocabulary | None = None,
        *,
        cache_dir: Path | None = None,
        progress: bool = True,
        log=print,
    ) -> Tagger:
        cfg = self.config
        cfg.validate()
        t0 = time.time()
        missing = [it.id for it in items if not it.tags]
        if missing:
            raise AdtagError(
                f"training needs tags on every item; {len(missing)} have none or an empty list, e.g. {missing[:3]}"
            )
        self.vocab_ = vocab or Vocabulary.from_items([it.tags for it in items])
        Y = self.vocab_.encode([it.tags for it in items], [it.id for it in items])
        n = len(items)
        if n < 4:
            raise AdtagError(f"training needs at least 4 items, got {n}")
        self.specs_ = infer_modalities(items, cfg.modalities)
        self.featurizers_ = {}
        blocks, masks = {}, {}
        for spec in tqdm(self.specs_, desc="features", disable=not progress, leave=False):
            vals, mask = raw_values(items, spec)
            f = fit_featurizer(spec, vals, mask)
            self.featurizers_[spec.name] = f
            blocks[spec.name], masks[spec.name] = f.transform(vals), mask
        extras = self._extras(blocks, n)
        self.metrics_: dict[str, Any] = {"n_items": n, "n_tags": len(self.vocab_)}
        self.branches_: dict[str, list] = {}
        self.fusion_: FusionTagger | None = None
        self.stacker_: Stacker | None = None

        if cfg.fusion in FUSIONS:
            present = _blocks_present(n, masks, self.specs_)
            self.fusion_ = FusionTagger(cfg.fusion, seed=cfg.seed).fit(
                [blocks[s.name] for s in self.specs_], present, Y
            )
            self.metrics_["train_seconds"] = round(time.time() - t0, 2)
            return self

        fingerprint = self._fingerprint(items)
        cached = _load_oof_cache(cache_dir, fingerprint) if cache_dir else None
        self.metrics_["branches_cached"] = cached is not None
        if cached is not None:
            log(f"  reusing the branches and meta-features cached in {cache_dir}")
        specs = self.branch_specs()
        folds = make_folds(n, cfg.folds, cfg.seed)
        P = np.zeros((n, len(specs), Y.shape[1]), np.float32)
        present = np.zeros((n, len(specs)), bool)
        branch_gap = {}
        for b, spec in enumerate(specs):
            present[:, b] = self._present(spec, masks, n)
        todo = [b for b, spec in enumerate(specs) if cached is None or spec.name not in cached[1]]
        for b in set(range(len(specs))) - set(todo):
            P[:, b] = cached[0][specs[b].name]
            self.branches_[specs[b].name] = cached[1][specs[b].name]
        jobs = [(specs[b], self._branch_input(specs[b], blocks), Y, present[:, b], folds, cfg.seed) for b in todo]
        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="branches (K-fold)", disable=not progress)
        for b, (oof, models) in zip(todo, run_parallel(fit_branch, jobs, cfg.jobs), strict=True):
            P[:, b], self.branches_[specs[b].name] = oof, models
            bar.update(1)
        bar.close()
        for b, spec in enumerate(specs):
            rows = present[:, b]
            branch_gap[spec.name] = round(gap_at_k(P[rows, b], Y[rows]), 4) if rows.any() else None
            log(f"  branch {spec.name:<24} out-of-fold GAP@20 {branch_gap[spec.name]}")
        self.metrics_["branch_oof_gap"] = branch_gap
        self.metrics_["mean_oof_gap"] = round(gap_at_k(mean_fusion(P, present), Y), 4)
        self.oof_ = {"fingerprint": fingerprint, "P": P, "present": present, "extras": extras}
        if cfg.fusion in ("stack", "paper"):
            kind = "tagwise" if cfg.fusion == "stack" else "paper"
            self.stacker_ = Stacker(kind=kind, seed=cfg.seed, **cfg.stacker).fit(P, present, extras, Y)
            self.metrics_["stacker_holdout_gap"] = round(self.stacker_.holdout_gap_, 4)
            log(f"  stacker ({kind}) GAP@20 on its held-out split {self.stacker_.holdout_gap_:.4f}")
        log(f"  plain averaging out-of-fold GAP@20 {self.metrics_['mean_oof_gap']}")
        self.metrics_["train_seconds"] = round(time.time() - t0, 2)
        return self

    def _fingerprint(self, items: list[Item]) -> str:
        h = hashlib.sha256()
        cfg = {
            k: v
            for k, v in asdict(self.config).items()
            if k in ("folds", "seed", "branch_models", "joint", "modalities")
        }
        h.update(json.dumps(cfg, sort_keys=True).encode())
        h.update(json.dumps(self.vocab_.tags).encode())
        for it in items:
            h.update(json.dumps(it.to_json(), sort_keys=True, ensure_ascii=False).encode())
            for name, p in sorted(it.features.items()):
                if isinstance(p, Path) and p.exists():
                    st = p.stat()
                    h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
                elif isinstance(p, np.ndarray):
                    h.update(p.tobytes())
        return h.hexdigest()

    # ---------------------------------------------------------------- prediction
    def branch_probas(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Branch probabilities (n, B, L), presence (n, B) and extras (n, E) for new items."""
        blocks, masks = self._featurize(items)
        n = len(items)
        specs = self.branch_specs()
        P = np.zeros((n, len(specs), len(self.vocab_)), np.float32)
        present = np.zeros((n, len(specs)), bool)
        for b, spec in enumerate(specs):
            P[:, b] = predict_branch(self.branches_[spec.name], self._branch_input(spec, blocks))
            present[:, b] = self._present(spec, masks, n)
        return P, present, self._extras(blocks, n)

    def predict_proba(self, items: list[Item]) -> np.ndarray:
        if self.fusion_ is not None:
            blocks, masks = self._featurize(items)
            present = _blocks_present(len(items), masks, self.specs_)
            return self.fusion_.predict_proba([blocks[s.name] for s in self.specs_], present)
        P, present, extras = self.branch_probas(items)
        if self.stacker_ is None:
            return mean_fusion(P, present)
        return self.stacker_.predict_proba(P, present, extras)

    def explain(self, items: list[Item], top_k: int = 10) -> list[list[dict[str, Any]]]:
        """Top tags per item with each branch's probability and share of the decision."""
        if self.fusion_ is not None:
            scores = self.predict_proba(items)
            return [
                [{"tag": self.vocab_.tags[j], "score": float(s[j]), "branches": {}} for j in np.argsort(-s)[:top_k]]
                for s in scores
            ]
        P, present, extras = self.branch_probas(items)
        scores = mean_fusion(P, present) if self.stacker_ is None else self.stacker_.predict_proba(P, present, extras)
        names = [s.name for s in self.branch_specs()]
        w = self.stacker_.branch_weights() if self.stacker_ is not None else np.ones(len(names)) / len(names)
        out = []
        for i, s in enumerate(scores):
            rows = []
            for j in np.argsort(-s)[:top_k]:
                contrib = w * P[i, :, j] * present[i]
                total = contrib.sum() or 1.0
                rows.append(
                    {
                        "tag": self.vocab_.tags[j],
                        "score": float(s[j]),
                        "branches": {
                            names[b]: {"probability": float(P[i, b, j]), "share": float(contrib[b] / total)}
                            for b in range(len(names))
                            if present[i, b]
                        },
                    }
                )
            out.append(rows)
        return out

    # ---------------------------------------------------------------- persistence
    def save(self, model_dir: Path) -> None:
        from adtag.models.persist import save_tagger

        save_tagger(self, Path(model_dir))

    @classmethod
    def load(cls, model_dir: Path) -> Tagger:
        from adtag.models.persist import load_tagger

        return load_tagger(Path(model_dir))

    def describe(self) -> dict[str, Any]:
        return {
            "adtag_version": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "config": asdict(self.config),
            "tags": self.vocab_.tags,
            "modalities": [s.to_json() for s in self.specs_],
            "branches": [s.name for s in self.branch_specs()] if self.fusion_ is None else [],
            "metrics": self.metrics_,
        }


def _load_oof_cache(cache_dir: Path, fingerprint: str):
    from adtag.models.persist import load_branch_cache

    return load_branch_cache(Path(cache_dir), fingerprint)
