"""Model folders: ``config.json`` (settings, versions, metrics, small learned metadata) plus
``weights.safetensors`` (every learned array) and ``meta_features.npz`` (the cached out-of-fold
meta-features). Nothing is pickled, and a truncated or hand-edited folder is reported clearly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from adtag.data.modalities import ModalitySpec
from adtag.data.vocab import Vocabulary
from adtag.errors import AdtagError
from adtag.io import atomic_dir
from adtag.models.branch import BranchSpec, make_estimator
from adtag.models.featurize import TextFeaturizer, make_featurizer
from adtag.models.fusion import FusionTagger
from adtag.models.stacker import Stacker

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
OOF_FILE = "meta_features.npz"
FORMAT = 1


def _branch_arrays(prefix: str, models: list) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    arrays, params = {}, []
    for k, m in enumerate(models):
        arrays.update({f"{prefix}/fold{k}/{key}": v for key, v in m.state().items()})
        params.append(m.get_params())
    return arrays, params


def save_tagger(tagger, model_dir: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    meta = tagger.describe()
    meta["format"] = FORMAT
    feat_meta = {}
    for name, f in tagger.featurizers_.items():
        a, m = f.state()
        arrays.update({f"featurizer/{name}/{k}": v for k, v in a.items()})
        feat_meta[name] = m
    branch_meta = {}
    for name, models in tagger.branches_.items():
        a, params = _branch_arrays(f"branch/{name}", models)
        arrays.update(a)
        branch_meta[name] = params
    meta["branch_params"] = branch_meta
    if tagger.stacker_ is not None:
        arrays.update({f"stacker/{k}": v for k, v in tagger.stacker_.state().items()})
        meta["stacker"] = {"params": tagger.stacker_.get_params(), "shape": list(tagger.stacker_.shape_)}
    if tagger.fusion_ is not None:
        arrays.update({f"fusion/{k}": v for k, v in tagger.fusion_.state().items()})
        meta["fusion"] = {"params": tagger.fusion_.get_params(), "dims": tagger.fusion_.dims_}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with atomic_dir(model_dir) as tmp:
        save_file(arrays, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / "featurizers.json").write_text(json.dumps(feat_meta, ensure_ascii=False), encoding="utf-8")
        oof = getattr(tagger, "oof_", None)
        if oof is not None:
            np.savez(
                tmp / OOF_FILE,
                fingerprint=np.array(oof["fingerprint"]),
                branches=np.array(meta["branches"]),
                P=oof["P"],
                present=oof["present"],
            )


def _read_folder(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    if not model_dir.is_dir():
        raise AdtagError(f"{model_dir}: model folder not found")
    for f in (CONFIG_FILE, WEIGHTS_FILE, "featurizers.json"):
        if not (model_dir / f).is_file():
            raise AdtagError(f"{model_dir}: model folder is incomplete ({f} is missing); retrain with 'adtag train'")
    try:
        meta = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        feat_meta = json.loads((model_dir / "featurizers.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{model_dir}: {CONFIG_FILE} or featurizers.json is not valid JSON ({exc})") from None
    try:
        arrays = load_file(str(model_dir / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise AdtagError(f"{model_dir}/{WEIGHTS_FILE}: unreadable weights ({exc})") from None
    return meta, feat_meta, arrays


def _sub(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    p = prefix + "/"
    return {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}


def load_tagger(model_dir: Path):
    from adtag.models.tagger import Tagger, TrainConfig

    meta, feat_meta, arrays = _read_folder(model_dir)
    try:
        if meta.get("format") != FORMAT:
            raise AdtagError(f"{model_dir}: unsupported model format {meta.get('format')!r} (expected {FORMAT})")
        t = Tagger(TrainConfig(**meta["config"]))
        t.vocab_ = Vocabulary(meta["tags"])
        t.specs_ = [ModalitySpec.from_json(s) for s in meta["modalities"]]
        t.metrics_ = meta.get("metrics", {})
        t.featurizers_ = {}
        for spec in t.specs_:
            f = make_featurizer(spec)
            f.load_state(_sub(arrays, f"featurizer/{spec.name}"), feat_meta[spec.name])
            if isinstance(f, TextFeaturizer) and len(f.vocabulary_) != f.idf_.shape[0]:
                raise AdtagError(f"{model_dir}: featurizer {spec.name!r} vocabulary and weights disagree")
            t.featurizers_[spec.name] = f
        t.branches_, t.stacker_, t.fusion_ = {}, None, None
        for name, params in meta.get("branch_params", {}).items():
            spec = BranchSpec(*name.split("/", 1))
            models = []
            for k, p in enumerate(params):
                m = make_estimator(spec.model)
                for key, val in p.items():
                    setattr(m, key, tuple(val) if isinstance(val, list) else val)
                m.load_state(_sub(arrays, f"branch/{name}/fold{k}"))
                models.append(m)
            t.branches_[name] = models
        if "stacker" in meta:
            st = Stacker(**meta["stacker"]["params"])
            t.stacker_ = st.load_state(_sub(arrays, "stacker"), meta["stacker"]["shape"])
        if "fusion" in meta:
            fu = FusionTagger(**meta["fusion"]["params"])
            t.fusion_ = fu.load_state(_sub(arrays, "fusion"), meta["fusion"]["dims"], len(t.vocab_))
        missing = [b.name for b in t.branch_specs() if b.name not in t.branches_] if t.fusion_ is None else []
        if missing:
            raise AdtagError(f"{model_dir}: branches {missing} are missing from the weights")
    except AdtagError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise AdtagError(
            f"{model_dir}: model folder is damaged or was edited by hand ({type(exc).__name__}: {exc})"
        ) from None
    return t


def load_branch_cache(model_dir: Path, fingerprint: str):
    """Reuse the branches of an earlier run on the same data and branch settings, if any."""
    f = model_dir / OOF_FILE
    if not f.is_file():
        return None
    try:
        with np.load(f, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            names, P = [str(x) for x in z["branches"]], z["P"]
        old = load_tagger(model_dir)
    except (AdtagError, OSError, KeyError, ValueError):
        return None
    return {n: P[:, b] for b, n in enumerate(names)}, {n: old.branches_[n] for n in names if n in old.branches_}
