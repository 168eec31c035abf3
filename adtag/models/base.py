"""The estimator contract of every learned component (docs/architecture.md, "The estimator contract")."""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar

import numpy as np


class Estimator:
    _classes: ClassVar[dict[str, type[Estimator]]] = {}  # how a saved record names its class (no pickle)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Estimator._classes[cls.__name__] = cls

    @classmethod
    def param_names(cls) -> list[str]:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.param_names()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit_fold(self, X: Any, Y: np.ndarray, train: np.ndarray, val: np.ndarray, prev: Any = None) -> Estimator:
        """Fit on rows ``train`` of a K-fold split. ``val``: the fold's held-out rows that have the
        modality; ``prev``: the first fold's model (None on the first fold), whose settings later folds may reuse."""
        return self.fit(X[train], Y[train])

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON meta): by default the learned arrays and values themselves."""
        learned = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        arrays = {k: v for k, v in learned.items() if isinstance(v, np.ndarray)}
        return arrays, {k: v for k, v in learned.items() if k not in arrays}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Estimator:
        for k, v in {**meta, **arrays}.items():
            setattr(self, k, v)
        return self


def clone(est: Estimator) -> Estimator:
    """An unfitted estimator with the same hyper-parameters."""
    return type(est)(**copy.deepcopy(est.get_params()))


def to_record(est: Estimator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and a JSON record (class name, parameters, learned metadata) of a fitted estimator."""
    arrays, meta = est.state()
    return arrays, {"class": type(est).__name__, "params": est.get_params(), "meta": meta}


def from_record(record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Estimator:
    if record["class"] not in Estimator._classes:
        raise ValueError(f"unknown component class {record['class']!r}")
    return Estimator._classes[record["class"]](**record["params"]).load_state(arrays, record.get("meta", {}))
