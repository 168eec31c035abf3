"""The estimator contract every learned component keeps (branch models, featurizers, stacker, fusions).

As in scikit-learn: ``__init__`` only stores its keyword hyper-parameters, which ``get_params``
reads back from the signature; ``fit`` learns attributes ending in ``_`` and never rewrites a
hyper-parameter; ``clone`` gives an unfitted copy. State is one shape for all:
``state() -> (arrays, meta)`` with numpy arrays and JSON metadata, restored by ``load_state``,
so a model folder saves every component the same way (``to_record`` / ``from_record``).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar

import numpy as np


class Estimator:
    """Base class: parameters from the ``__init__`` signature, one state shape, a K-fold hook."""

    _classes: ClassVar[dict[str, type[Estimator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Estimator._classes[cls.__name__] = cls  # how a saved record names its class (no pickle)

    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.param_names()}

    def set_params(self, **params: Any) -> Estimator:
        unknown = set(params) - set(self.param_names())
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameters {sorted(unknown)}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit_fold(self, X: Any, Y: np.ndarray, train: np.ndarray, val: np.ndarray, prev: Any = None) -> Estimator:
        """Fit on rows ``train`` of one K-fold split; ``val`` are the fold's held-out rows that have
        the modality and ``prev`` the first fold's fitted model (None on the first fold). Models
        that select settings on validation data or warm-start override this."""
        return self.fit(X[train], Y[train])

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Estimator:
        raise NotImplementedError


def clone(est: Estimator) -> Estimator:
    """An unfitted estimator with the same hyper-parameters."""
    return type(est)(**copy.deepcopy(est.get_params()))


def to_record(est: Estimator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and a JSON record (class name, parameters, learned metadata) for a fitted estimator."""
    arrays, meta = est.state()
    return arrays, {"class": type(est).__name__, "params": est.get_params(), "meta": meta}


def from_record(record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Estimator:
    cls = Estimator._classes.get(record["class"])
    if cls is None:
        raise ValueError(f"unknown component class {record['class']!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in record["params"].items()}
    return cls(**params).load_state(arrays, record.get("meta", {}))
