"""The trained system, what ``adtag train`` fits and saves: featurizers -> K-fold branches -> one fusion."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from adtag import __version__, runtime
from adtag.data.manifest import Item
from adtag.data.modalities import ModalitySpec, infer_modalities, raw_values
from adtag.data.scores import in_sample_warnings
from adtag.data.vocab import Vocabulary
from adtag.engines.local import JOBS, run_parallel
from adtag.errors import AdtagError
from adtag.featurize import fit_featurizer
from adtag.metrics import gap_at_k
from adtag.models import persist
from adtag.models.branch import DEFAULT_MODELS, JOINT, BranchSpec, make_folds
from adtag.models.fusions import FUSIONS, NotApplicable, create_fusion, mean_fusion
from adtag.models.meta_features import Features, MapFn, MetaFeatures, branch_keys, fit_meta_features


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
    jobs: int = JOBS  # branches fitted in parallel processes (one thread each)

    def validate(self) -> None:
        if self.fusion not in FUSIONS:
            raise AdtagError(f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        if self.folds < 2:
            raise AdtagError("--folds must be at least 2")


def fuse_passes(fusion: Any, passes: list[MetaFeatures]) -> np.ndarray:
    """A fitted fusion applied to each pass of ``Tagger.meta_features(items, passes=True)``, outputs averaged."""
    return (sum(fusion.predict_proba(mf) for mf in passes) / len(passes)).astype(np.float32)


def joint_matrix(blocks: list[Any]) -> sp.csr_matrix:
    """Early fusion: all modalities side by side, each block scaled to a unit-size row."""
    parts = [b if sp.issparse(b) else sp.csr_matrix(b / np.sqrt(max(1, b.shape[1]))) for b in blocks]
    return sp.hstack(parts, format="csr", dtype=np.float32)


class Tagger:
    """Fit with :meth:`fit`, persist with :meth:`save`, restore with :meth:`load`.

    Learned: ``vocab_``, ``specs_`` (modalities), ``featurizers_``, ``branches_`` (fold models per
    branch), ``meta_features_`` (out-of-fold, after fit), ``fusion_`` and ``metrics_``.
    """

    PASSES_UP_TO = 3000  # training items up to which new items are scored in K passes (meta_features)

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    @property
    def on_features(self) -> bool:
        return FUSIONS[self.config.fusion].on == "features"

    # ---------------------------------------------------------------- inputs
    def features(self, items: list[Item], map_fn: MapFn | None = None) -> Features:
        """The featurized modalities of ``items`` (the input of the branches and the fusion networks). With
        ``map_fn`` (training), the featurizers are fitted on them first, the text modalities as its jobs."""
        raw = [raw_values(items, s) for s in self.specs_]
        if map_fn is None:
            blocks = [self.featurizers_[s.name].transform(v) for s, (v, _) in zip(self.specs_, raw, strict=True)]
        else:
            text = [i for i, s in enumerate(self.specs_) if s.kind == "text"]
            fits = dict(zip(text, map_fn(fit_featurizer, [(self.specs_[i], *raw[i]) for i in text]), strict=True))
            fits.update({i: fit_featurizer(s, *raw[i]) for i, s in enumerate(self.specs_) if i not in fits})
            self.featurizers_ = {s.name: fits[i][0] for i, s in enumerate(self.specs_)}
            blocks = [fits[i][1] for i in range(len(raw))]
        present = np.stack([m for _, m in raw], axis=1) if raw else np.zeros((len(items), 0), bool)
        return Features(blocks, present, [s.name for s in self.specs_])

    def branch_specs(self) -> list[BranchSpec]:
        models = self.config.branch_models
        out = [BranchSpec(s.name, m) for s in self.specs_ for m in models.get(s.kind, DEFAULT_MODELS.get(s.kind, []))]
        # The early-fusion branch learns from features; external scores pass through untouched.
        if self.config.joint and sum(s.kind != "scores" for s in self.specs_) > 1:
            out += [BranchSpec(JOINT, m) for m in self.config.branch_models.get(JOINT, ["lr"])]
        return out

    def _branch_inputs(self, x: Features) -> tuple[list[BranchSpec], Any, np.ndarray, np.ndarray]:
        """Branch specs, ``inputs(spec)`` (a feature matrix), presence (n, B) and extras (n, E)."""
        specs, n, col = self.branch_specs(), x.present.shape[0], {m: i for i, m in enumerate(x.modalities)}
        present = np.ones((n, len(specs)), bool)
        for b, s in enumerate(specs):
            present[:, b] = x.present[:, col[s.modality]] if s.modality != JOINT else True
        joint = cache(lambda: joint_matrix([x.blocks[col[s.name]] for s in self.specs_ if s.kind != "scores"]))

        def inputs(spec: BranchSpec) -> Any:
            return joint() if spec.modality == JOINT else x.blocks[col[spec.modality]]

        ex = [col[s.name] for s in self.specs_ if s.kind == "extra"]
        extras = np.asarray(x.blocks[ex[0]], np.float32) if ex else np.zeros((n, 0), np.float32)
        return specs, inputs, present, extras

    # ---------------------------------------------------------------- training
    def fit(
        self,
        items: list[Item],
        vocab: Vocabulary | None = None,
        *,
        cache_dir: Path | None = None,
        progress: bool = True,
        log=print,
        map_fn: MapFn | None = None,
    ) -> Tagger:
        """Fit featurizers, branches (K-fold, through ``map_fn``; default: ``config.jobs``
        processes) and the fusion; ``cache_dir`` is an earlier model folder whose branches are reused."""
        cfg = self.config
        cfg.validate()
        t0 = time.time()
        if missing := [it.id for it in items if not it.tags]:
            raise AdtagError(
                f"training needs tags on every item; {len(missing)} have none or an empty list, e.g. {missing[:3]}"
            )
        self.vocab_ = vocab or Vocabulary.from_items([it.tags for it in items])
        Y = self.vocab_.encode([it.tags for it in items], [it.id for it in items])
        n = len(items)
        if n < 4:
            raise AdtagError(f"training needs at least 4 items, got {n}")
        self.specs_ = infer_modalities(items, cfg.modalities)
        for spec in self.specs_:
            if spec.kind == "scores":  # scores are one per tag, in the vocabulary's order
                spec.columns, spec.dim = list(self.vocab_.tags), len(self.vocab_)
        x = self.features(items, map_fn := map_fn or partial(run_parallel, n_jobs=cfg.jobs))
        self.metrics_: dict[str, Any] = {"n_items": n, "n_tags": len(self.vocab_)}
        self.branches_: dict[str, list] = {}
        self.meta_features_: MetaFeatures | None = None
        if self.on_features:
            self.fusion_ = create_fusion(cfg.fusion, cfg.seed).fit(x, Y)
            self.metrics_["train_seconds"] = round(time.time() - t0, 2)
            return self

        specs, inputs, present, extras = self._branch_inputs(x)
        mods = [m.name for m in self.specs_]  # ":fs": fold-standardised dense branches (11d); older caches refit
        keys = [f"{k}:fs" for k in branch_keys(items, self.vocab_.tags, cfg.folds, cfg.seed, specs, mods)]
        cache = persist.load_branch_cache(Path(cache_dir)) if cache_dir else {}
        reused = sum(k in cache for k in keys)
        self.metrics_["branches_cached"] = reused == len(specs) > 0
        self.metrics_["branches_reused"] = reused
        if reused:
            log(f"  reusing {reused} of {len(specs)} branches (and their meta-features) cached in {cache_dir}")
        mf, self.branches_ = fit_meta_features(
            specs,
            inputs,
            present,
            Y,
            make_folds(n, cfg.folds, cfg.seed),
            extras,
            keys=keys,
            cache=cache,
            seed=cfg.seed,
            map_fn=map_fn,
            progress=progress,
        )
        self.meta_features_ = mf
        branch_gap = {n: None if g is None else round(g, 4) for n, g in zip(mf.branches, mf.branch_gap(Y), strict=True)}
        for name, g in branch_gap.items():
            log(f"  branch {name:<24} out-of-fold GAP@20 {g}")
        self.metrics_["branch_oof_gap"] = branch_gap
        for warning in in_sample_warnings(branch_gap, {s.name: s.kind for s in self.specs_}):
            log(f"  warning: {warning}")
        self.metrics_["mean_oof_gap"] = round(gap_at_k(mean_fusion(mf.P, mf.present), Y), 4)
        try:
            fusion = create_fusion(cfg.fusion, cfg.seed, **cfg.stacker)
            with runtime.threads(cfg.jobs):  # the branch workers are done: their cores are free
                self.fusion_ = fusion.fit(mf, Y)
        except NotApplicable as exc:
            raise AdtagError(f"fusion {cfg.fusion!r}: {exc}") from None
        if hasattr(self.fusion_, "holdout_gap_"):
            self.metrics_["stacker_holdout_gap"] = round(self.fusion_.holdout_gap_, 4)
            log(f"  stacker ({cfg.fusion}) GAP@20 on its held-out split {self.fusion_.holdout_gap_:.4f}")
        log(f"  plain averaging out-of-fold GAP@20 {self.metrics_['mean_oof_gap']}")
        self.metrics_["train_seconds"] = round(time.time() - t0, 2)
        return self

    # ---------------------------------------------------------------- prediction
    def meta_features(self, items: list[Item], passes: bool = False) -> MetaFeatures | list[MetaFeatures]:
        """Branch probabilities for new items: the fold models' mean, or with ``passes`` K sets, the k-th from
        every branch's fold-k model (distributed as the out-of-fold meta-features the fusion learned from);
        above ``PASSES_UP_TO`` training items one, the mean (K passes: ~3x the CPU, no gain; BENCHMARKS 11d)."""
        specs, inputs, present, extras = self._branch_inputs(self.features(items))
        K = max((len(self.branches_[s.name]) for s in specs), default=1)
        many = passes and getattr(self, "metrics_", {}).get("n_items", 0) <= self.PASSES_UP_TO
        P = np.zeros((K if many else 1, len(items), len(specs), len(self.vocab_)), np.float32)
        for b, spec in enumerate(specs):
            models, X = self.branches_[spec.name], inputs(spec)
            for k in range(K):  # a branch with fewer fold models reuses them in turn
                P[k if many else 0, :, b] += models[k % len(models)].predict_proba(X) / (1 if many else K)
        mf = [MetaFeatures(p, present, [s.name for s in specs], extras) for p in P]
        return mf if passes else mf[0]

    def predict_proba(self, items: list[Item]) -> np.ndarray:
        if self.on_features:
            return self.fusion_.predict_proba(self.features(items))
        return fuse_passes(self.fusion_, self.meta_features(items, passes=True))

    # ---------------------------------------------------------------- persistence
    def save(self, model_dir: Path) -> None:
        components = {f"featurizer/{k}": f for k, f in self.featurizers_.items()}
        for name, models in self.branches_.items():
            components.update({f"branch/{name}/fold{k}": m for k, m in enumerate(models)})
        components["fusion"] = self.fusion_
        persist.save_model(Path(model_dir), self.describe(), components, self.meta_features_)
        if getattr(self, "decider_", None) is not None:  # the decision layer (adtag train --decide)
            self.decider_.save(Path(model_dir))

    @classmethod
    def load(cls, model_dir: Path) -> Tagger:
        model_dir = Path(model_dir)
        meta, components = persist.load_model(model_dir)
        try:
            t = cls(TrainConfig(**meta["config"]))
            t.vocab_ = Vocabulary(meta["tags"])
            t.specs_ = [ModalitySpec.from_json(s) for s in meta["modalities"]]
            t.metrics_ = meta.get("metrics", {})
            t.featurizers_ = {s.name: components[f"featurizer/{s.name}"] for s in t.specs_}
            t.fusion_, t.meta_features_, t.branches_ = components["fusion"], None, persist.branch_models(components)
        except (KeyError, TypeError, ValueError) as exc:
            raise AdtagError(f"{model_dir}: model folder is damaged or was edited by hand ({exc!r})") from None
        missing = [] if t.on_features else [b.name for b in t.branch_specs() if b.name not in t.branches_]
        if missing:
            raise AdtagError(f"{model_dir}: branches {missing} are missing from the weights")
        from adtag.decisions.decider import Decider

        t.decider_ = Decider.load(model_dir) if Decider.exists(model_dir) else None
        return t

    def describe(self) -> dict[str, Any]:
        return {
            "adtag_version": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "config": asdict(self.config),
            "tags": self.vocab_.tags,
            "modalities": [s.to_json() for s in self.specs_],
            "branches": [] if self.on_features else [s.name for s in self.branch_specs()],
            "metrics": self.metrics_,
        }
