"""Model folders (docs/architecture.md): every component saved the same way (``base.to_record``),
nothing pickled; a truncated or hand-edited folder is reported clearly, format-1 folders still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from adtag.data.modalities import ModalitySpec
from adtag.errors import AdtagError
from adtag.featurize import make_featurizer
from adtag.io import atomic_dir
from adtag.models import fusion, fusions, stacker  # noqa: F401  (their classes can be named in a folder)
from adtag.models.base import Estimator, from_record, to_record
from adtag.models.branch import BRANCH_MODELS
from adtag.models.meta_features import MetaFeatures

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
COMPONENTS_FILE = "components.json"
OOF_FILE = "meta_features.npz"
FORMAT = 2


def save_model(
    model_dir: Path, meta: dict[str, Any], components: dict[str, Estimator], mf: MetaFeatures | None
) -> None:
    """Write a model folder atomically; ``components`` maps a path (``branch/ocr/lr/fold0``) to a fitted estimator."""
    arrays: dict[str, np.ndarray] = {}
    records: dict[str, Any] = {}
    for path, est in components.items():
        a, records[path] = to_record(est)
        arrays.update({f"{path}/{k}": np.ascontiguousarray(v) for k, v in a.items()})
    with atomic_dir(model_dir) as tmp:
        save_file(arrays, str(tmp / WEIGHTS_FILE))
        text = json.dumps({**meta, "format": FORMAT}, ensure_ascii=False, indent=2) + "\n"
        (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        (tmp / COMPONENTS_FILE).write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        if mf is not None:  # the out-of-fold meta-features, reused branch by branch by the next run
            names = {"fingerprint": mf.fingerprint, "branches": mf.branches, "keys": mf.keys}
            np.savez(tmp / OOF_FILE, P=mf.P, present=mf.present, **{k: np.array(v) for k, v in names.items()})


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{path}: not valid JSON ({exc})") from None


def _legacy_records(meta: dict[str, Any], feat_meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Component records of a format-1 folder (a block per component in config.json); renames its arrays."""
    for k in [k for k in arrays if k.rsplit("/", 1)[-1] in ("idf", "mean", "scale", "coef", "intercept", "platt")]:
        arrays[k + "_"] = arrays.pop(k).astype(np.float64 if k.endswith("/platt") else np.float32)
    for k in [k for k in arrays if k.startswith("stacker/")]:
        arrays["fusion/" + k[8:]] = arrays.pop(k)
    records: dict[str, Any] = {}
    for s in meta["modalities"]:
        f, fm = make_featurizer(ModalitySpec.from_json(s)), feat_meta[s["name"]]
        fm = {"vocabulary_": {w: i for i, w in enumerate(fm["words"])}} if "words" in fm else fm
        records[f"featurizer/{s['name']}"] = {"class": type(f).__name__, "params": f.get_params(), "meta": fm}
    for name, folds in meta.get("branch_params", {}).items():
        cls = BRANCH_MODELS[name.split("/", 1)[1]][0]
        for k, p in enumerate(folds):
            params = {key: v for key, v in p.items() if key in cls.param_names()}
            rec = {"class": cls.__name__, "params": params, "meta": {"alpha_": p["alpha"]} if "alpha" in p else {}}
            records[f"branch/{name}/fold{k}"] = rec
    if "stacker" in meta:
        params = {**meta["stacker"]["params"], "kind": meta["stacker"]["params"]["kind"].replace("tagwise", "stack")}
        records["fusion"] = {"class": "Stacker", "params": params, "meta": {"shape": meta["stacker"]["shape"]}}
    elif "fusion" in meta:
        fmeta = {"dims": meta["fusion"]["dims"], "n_tags": len(meta["tags"])}
        records["fusion"] = {"class": "FusionTagger", "params": meta["fusion"]["params"], "meta": fmeta}
    else:
        records["fusion"] = {"class": "BranchFusion", "params": {"branch": "*"}, "meta": {}}
        arrays["fusion/weights_"] = np.full(len(meta["branches"]), 1 / len(meta["branches"]))
    return records


def load_model(model_dir: Path) -> tuple[dict[str, Any], dict[str, Estimator]]:
    """The config (``describe()`` of the saved Tagger) and every component, by path."""
    if not model_dir.is_dir():
        raise AdtagError(f"{model_dir}: model folder not found")
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        if not (model_dir / f).is_file():
            raise AdtagError(f"{model_dir}: model folder is incomplete ({f} is missing); retrain with 'adtag train'")
    meta = _read_json(model_dir / CONFIG_FILE)
    if meta.get("format") not in (1, FORMAT):
        raise AdtagError(f"{model_dir}: unsupported model format {meta.get('format')!r} (expected {FORMAT})")
    legacy = meta["format"] == 1
    records_file = model_dir / ("featurizers.json" if legacy else COMPONENTS_FILE)
    if not records_file.is_file():
        raise AdtagError(f"{model_dir}: model folder is incomplete ({records_file.name} is missing)")
    records = _read_json(records_file)
    try:
        arrays = load_file(str(model_dir / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise AdtagError(f"{model_dir}/{WEIGHTS_FILE}: unreadable weights ({exc})") from None
    try:
        if legacy:
            records = _legacy_records(meta, records, arrays)
        components = {}
        for path, rec in records.items():
            sub = {k[len(path) + 1 :]: v for k, v in arrays.items() if k.startswith(path + "/")}
            components[path] = from_record(rec, sub)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise AdtagError(
            f"{model_dir}: model folder is damaged or was edited by hand ({type(exc).__name__}: {exc})"
        ) from None
    return meta, components


def branch_models(components: dict[str, Estimator]) -> dict[str, list[Estimator]]:
    """The fold models of every branch, from component paths ``branch/NAME/foldK``."""
    out: dict[str, dict[int, Estimator]] = {}
    for path, est in components.items():
        if path.startswith("branch/"):
            name, fold = path[len("branch/") :].rsplit("/fold", 1)
            out.setdefault(name, {})[int(fold)] = est
    return {name: [folds[k] for k in sorted(folds)] for name, folds in out.items()}


def load_branch_cache(model_dir: Path) -> dict[str, tuple[np.ndarray, list]]:
    """The branches of an earlier run saved in ``model_dir``, by branch key: (out-of-fold P, fold models)."""
    f = model_dir / OOF_FILE
    if not f.is_file():
        return {}
    try:
        with np.load(f, allow_pickle=False) as z:
            names, keys, P = [str(x) for x in z["branches"]], [str(x) for x in z["keys"]], z["P"]
        models = branch_models(load_model(model_dir)[1])
    except (AdtagError, OSError, KeyError, ValueError):  # no cache (or a format-1 one): fit afresh
        return {}
    return {
        key: (P[:, b], models[name]) for b, (name, key) in enumerate(zip(names, keys, strict=True)) if name in models
    }
