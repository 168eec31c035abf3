"""One conformance suite over every registered learned component (as scikit-learn's check_estimator).

Branch models (the branch registry), featurizers (one per modality kind) and fusions (the fusion
registry: stackers, averaging, single branches, fusion networks) must all: keep their
hyper-parameters through fit, learn only ``*_`` attributes, clone unfitted with equal parameters,
predict the right shapes, and save to arrays + JSON (no pickle) that restore identical predictions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from adtag.data.modalities import ModalitySpec
from adtag.featurize import make_featurizer
from adtag.models.base import Estimator, clone, from_record, to_record
from adtag.models.branch import BRANCH_MODELS, make_branch_model
from adtag.models.fusions import FUSIONS, create_fusion
from adtag.models.meta_features import Features, MetaFeatures

N, L = 64, 4


def _labels(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, 6)).astype(np.float32)
    Y = (z[:, :L] + 0.3 * rng.normal(size=(N, L)) > 0.3).astype(np.float32)
    return z, Y


def _branch_case(name: str):
    z, Y = _labels()
    if name == "scores":  # the pass-through branch takes an external model's (n, L) probabilities
        z = 1 / (1 + np.exp(-z[:, :L]))
    return make_branch_model(name, seed=0), (z, Y), (z,)


def _featurizer_case(kind: str):
    rng = np.random.default_rng(1)
    mask = np.ones(N, bool)
    mask[:5] = False
    if kind == "text":
        words = ["beach", "city", "food", "car", "music", "sport", "sale", "new"]
        vals = [" ".join(rng.choice(words, 5)) if m else "" for m in mask]
        spec = ModalitySpec("ocr", "text")
    elif kind == "extra":
        vals, spec = [rng.normal(size=(N, 3)) * 100], ModalitySpec("extra", "extra", columns=["a", "b", "c"])
    else:
        shape = (7, 5) if kind == "sequence" else (5,)
        vals = [rng.normal(size=shape).astype(np.float32) if m else None for m in mask]
        spec = ModalitySpec("frames", kind, dim=5)
    return make_featurizer(spec), (vals, mask), (vals,)


def _fusion_case(name: str):
    z, Y = _labels()
    rng = np.random.default_rng(2)
    if FUSIONS[name].on == "features":
        blocks = [z, sp.csr_matrix(np.maximum(z[:, ::-1] - 0.5, 0)), rng.normal(size=(N, 3)).astype(np.float32)]
        present = rng.random((N, 3)) > 0.2
        x = Features(blocks, present, ["a", "b", "c"])
    else:
        P = 1 / (1 + np.exp(-(z[:, None, :L] + rng.normal(size=(N, 3, L)))))
        names = ["a/lr", "b/mlp", "joint/lr"]
        x = MetaFeatures(
            P.astype(np.float32), rng.random((N, 3)) > 0.2, names, rng.normal(size=(N, 2)).astype(np.float32)
        )
    return create_fusion(name, seed=0, **({"max_epochs": 5} if name in ("stack", "paper") else {})), (x, Y), (x,)


CASES = (
    [pytest.param(_branch_case, n, id=f"branch-{n}") for n in BRANCH_MODELS]
    + [pytest.param(_featurizer_case, k, id=f"featurizer-{k}") for k in ("text", "vector", "sequence", "extra")]
    + [pytest.param(_fusion_case, n, id=f"fusion-{n}") for n in FUSIONS]
)


def _predict(est, x) -> np.ndarray:
    out = est.transform(*x) if hasattr(est, "transform") else est.predict_proba(*x)
    return out.toarray() if sp.issparse(out) else np.asarray(out)


@pytest.mark.parametrize(("case", "name"), CASES)
def test_component_contract(case, name, tmp_path):
    est, fit_args, predict_args = case(name)
    assert isinstance(est, Estimator)
    params = est.get_params()
    assert set(params) == set(type(est).param_names())
    json.dumps(params)  # hyper-parameters are plain values

    fitted = est.fit(*fit_args)
    assert fitted is est
    assert est.get_params() == params, "fit must not rewrite hyper-parameters"
    learned = [k for k in vars(est) if k not in params]
    assert learned and all(k.endswith("_") for k in learned), learned

    out = _predict(est, predict_args)
    assert out.shape[0] == N and np.isfinite(out).all()
    if not hasattr(est, "transform"):
        assert out.shape == (N, L) and (out >= 0).all() and (out <= 1).all()

    fresh = clone(est)
    assert type(fresh) is type(est) and fresh is not est and fresh.get_params() == params
    assert not [k for k in vars(fresh) if k.endswith("_")], "a clone is unfitted"

    arrays, record = to_record(est)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    record = json.loads(json.dumps(record))  # the record is JSON, nothing else
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp_path / "w.safetensors"))
    again = from_record(record, load_file(str(tmp_path / "w.safetensors")))
    assert type(again) is type(est) and again.get_params() == params
    np.testing.assert_allclose(_predict(again, predict_args), out, rtol=1e-6, atol=1e-7)


def test_registries_cover_the_paper():
    assert set(BRANCH_MODELS) >= {"lr", "svm", "mlp", "scores"}
    paper_rows = {"stack", "paper", "mean", "best-branch", "early-fusion-lr", "concat", "sum", "max", "attention"}
    assert set(FUSIONS) == paper_rows
    with pytest.raises(ValueError, match="unknown fusion"):
        create_fusion("nosuch")


def test_meta_features_are_cached_per_branch(tmp_path):
    """A new branch reuses the others' fold models and out-of-fold meta-features from the last run."""
    from adtag.data.manifest import read_items
    from adtag.models.tagger import Tagger, TrainConfig
    from tests.conftest import make_manifest

    items = read_items(make_manifest(tmp_path / "data", n=60, seed=4))
    quiet = {"progress": False, "log": lambda *_: None}
    first = Tagger(TrainConfig(fusion="mean", folds=2, jobs=1)).fit(items, **quiet)
    first.save(tmp_path / "m")
    models = {k: list(v) for k, v in TrainConfig().branch_models.items()}
    models["vector"] = models["vector"] + ["svm"]
    second = Tagger(TrainConfig(fusion="stack", folds=2, jobs=1, branch_models=models))
    second.fit(items, cache_dir=tmp_path / "m", **quiet)
    old, new = first.meta_features_, second.meta_features_
    added = set(new.branches) - set(old.branches)
    assert added and second.metrics_["branches_reused"] == len(old.branches)
    assert second.metrics_["branches_cached"] is False  # one branch was fitted
    for b, name in enumerate(old.branches):
        np.testing.assert_array_equal(new.P[:, new.branches.index(name)], old.P[:, b])
        assert second.branches_[name][0] is not first.branches_[name][0]  # restored from the folder
    assert new.fingerprint != old.fingerprint
