"""Modalities of a set of items: their names, kinds and raw values.

Kinds follow the manifest: ``text`` (strings), ``vector`` ((D,) arrays), ``sequence`` ((T, D)
arrays) and ``extra`` (the one tabular modality built from every item's ``extra`` numbers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.limits import cap_text, check_shape
from adtag.data.manifest import Item
from adtag.errors import AdtagError

EXTRA = "extra"


@dataclass
class ModalitySpec:
    name: str
    kind: str  # "text" | "vector" | "sequence" | "extra"
    dim: int = 0  # feature width of vector/sequence arrays
    columns: list[str] = field(default_factory=list)  # extra only

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ModalitySpec:
        return cls(**obj)


def read_npy_header(path: Path, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, checked against the size caps before any data is read."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as fh:
            try:
                version = npy.read_magic(fh)
            except ValueError:
                raise AdtagError(f"{where}: not a .npy file (no NumPy header)") from None
            try:
                read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = read(fh)
            except (ValueError, SyntaxError) as exc:
                raise AdtagError(f"{where}: not a .npy file (bad header: {exc})") from None
            start = fh.tell()
    except OSError as exc:
        raise AdtagError(f"{where}: cannot read ({exc.strerror})") from None
    if dtype.hasobject:
        raise AdtagError(f"{where}: contains pickled (object) data, which adtag never loads")
    if dtype.kind not in "fiu":
        raise AdtagError(f"{where}: expected a numeric array, got dtype {dtype}")
    if len(shape) not in (1, 2) or 0 in shape:
        raise AdtagError(f"{where}: expected shape (D,) or (T, D), got {shape}")
    check_shape(shape, where)
    size = path.stat().st_size
    if size < start + math.prod(shape) * dtype.itemsize:
        raise AdtagError(f"{where}: truncated ({size} bytes for an array of shape {shape})")
    return shape, dtype


def load_array(value: Path | np.ndarray, item_id: str, name: str) -> np.ndarray:
    """Load and check one feature array: 1-D or 2-D, finite, non-empty, within the size caps."""
    if isinstance(value, np.ndarray):
        arr, where = value, f"item {item_id!r} features.{name}"
        check_shape(arr.shape, where)
    else:
        where = f"{value} (item {item_id!r}, features.{name})"
        if not Path(value).is_file():
            raise AdtagError(f"{where}: file not found")
        read_npy_header(Path(value), where)
        try:
            arr = np.load(value, allow_pickle=False)
        except Exception as exc:  # numpy raises several types for a corrupt file
            raise AdtagError(f"{where}: not a readable .npy array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise AdtagError(f"{where}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise AdtagError(f"{where}: expected shape (D,) or (T, D), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise AdtagError(f"{where}: contains NaN or infinite values")
    return arr.astype(np.float32, copy=False)


def array_shape(value: Path | np.ndarray, item_id: str, name: str) -> tuple[int, ...]:
    """Shape of a feature array, reading only the .npy header (full checks come at load time)."""
    if isinstance(value, np.ndarray):
        return value.shape
    where = f"{value} (item {item_id!r}, features.{name})"
    if not Path(value).is_file():
        raise AdtagError(f"{where}: file not found")
    return read_npy_header(Path(value), where)[0]


def infer_modalities(items: list[Item], wanted: list[str] | None = None) -> list[ModalitySpec]:
    """Find every modality present in ``items`` (or only ``wanted``), in a stable order."""
    text_names: dict[str, None] = {}
    feat_names: dict[str, None] = {}
    extra_cols: dict[str, None] = {}
    for it in items:
        text_names.update(dict.fromkeys(it.text))
        feat_names.update(dict.fromkeys(it.features))
        extra_cols.update(dict.fromkeys(it.extra))
    specs: list[ModalitySpec] = [ModalitySpec(n, "text") for n in text_names]
    for name in feat_names:
        dims, ndims = set(), set()
        for it in items:
            if name in it.features:
                shape = array_shape(it.features[name], it.id, name)
                dims.add(shape[-1])
                ndims.add(len(shape))
        if len(dims) != 1:
            raise AdtagError(f"features.{name}: arrays disagree on their last dimension {sorted(dims)}")
        kind = "sequence" if 2 in ndims else "vector"
        specs.append(ModalitySpec(name, kind, dim=dims.pop()))
    if extra_cols:
        specs.append(ModalitySpec(EXTRA, "extra", columns=list(extra_cols)))
    if wanted is not None:
        by_name = {s.name: s for s in specs}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise AdtagError(f"modalities {missing} not found in the data; present: {sorted(by_name)}")
        specs = [by_name[w] for w in wanted]
    if not specs:
        raise AdtagError("the items carry no modality (no text, features or extra)")
    return specs


def raw_values(items: list[Item], spec: ModalitySpec) -> tuple[list[Any], np.ndarray]:
    """The raw values of one modality and a presence mask (n,).

    text -> strings ("" when absent); vector/sequence -> arrays (None when absent);
    extra -> an (n, len(columns)) float array with NaN where a column is absent.
    """
    n = len(items)
    mask = np.zeros(n, dtype=bool)
    if spec.kind == "text":
        vals: list[Any] = []
        for i, it in enumerate(items):
            t = it.text.get(spec.name, "")
            mask[i] = bool(t.strip())
            vals.append(cap_text(t))
        return vals, mask
    if spec.kind == "extra":
        mat = np.full((n, len(spec.columns)), np.nan, dtype=np.float32)
        for i, it in enumerate(items):
            for j, c in enumerate(spec.columns):
                if c in it.extra:
                    mat[i, j] = it.extra[c]
            mask[i] = bool(it.extra)
        return [mat], mask
    arrays: list[Any] = []
    for i, it in enumerate(items):
        v = it.features.get(spec.name)
        if v is None:
            arrays.append(None)
            continue
        arr = load_array(v, it.id, spec.name)
        if arr.shape[-1] != spec.dim:
            raise AdtagError(
                f"item {it.id!r} features.{spec.name}: last dimension {arr.shape[-1]}, expected {spec.dim}"
            )
        arrays.append(arr)
        mask[i] = True
    return arrays, mask
