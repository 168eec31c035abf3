"""Bring-your-own-model scores: per-tag scores of external models as modalities.

A score modality names one external model; an item's value is one score per tag of the
vocabulary. They reach the stacker as they are (level-1 meta-features), so they must be
out-of-sample for training items. Three ways in:

- manifest ``"scores": {"my_model": "s/v1.npy"}``: a (L,) vector in the vocabulary's tag order;
- manifest ``"scores": {"my_model": {"tag": 0.9, ...}}``: inline, tags not listed score 0;
- ``--scores my_model=pred.json``: a TAAC submission JSON (``{"<id>.mp4": {"result": [{"labels":
  [...], "scores": [...]}]}}``), one file per model, tags not listed score 0. A top-level
  ``"score_type": "logits"`` declares logits (converted with the sigmoid).

Probabilities must lie in [0, 1]. An item a model did not score lacks that modality.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from adtag.errors import AdtagError

ScoreValue = Path | np.ndarray | dict[str, float]
TYPE_KEY = "score_type"
TYPES = ("probabilities", "logits")


def parse_manifest_scores(obj: Any, root: Path, fail: Callable[[str], AdtagError]) -> dict[str, ScoreValue]:
    """The manifest's ``scores`` field: model name -> .npy path or inline {tag: probability}."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise fail("field 'scores' must map model names to a .npy path or a {tag: score} object")
    out: dict[str, ScoreValue] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not name:
            raise fail("field 'scores' must map non-empty model names")
        if isinstance(value, str):
            out[name] = root / value
        elif isinstance(value, dict):
            out[name] = {}
            for tag, s in value.items():
                if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or not 0 <= s <= 1:
                    raise fail(f"scores.{name}.{tag}: expected a probability in [0, 1], got {s!r}")
                out[name][str(tag)] = float(s)
        else:
            raise fail(f"scores.{name}: expected a .npy path or a {{tag: score}} object, got {type(value).__name__}")
    return out


def score_vector(value: ScoreValue, tags: list[str], where: str) -> np.ndarray:
    """One item's scores as a (L,) float32 vector in the order of ``tags``, checked."""
    if isinstance(value, dict):
        index = {t: j for j, t in enumerate(tags)}
        vec = np.zeros(len(tags), np.float32)
        for tag, s in value.items():
            if tag not in index:
                raise AdtagError(f"{where}: unknown tag {tag!r} (not among the vocabulary's {len(tags)} tags)")
            vec[index[tag]] = s
        return vec
    if isinstance(value, np.ndarray):
        arr = value
    else:
        where = f"{value} ({where})"
        if not Path(value).is_file():
            raise AdtagError(f"{where}: file not found")
        try:
            arr = np.load(value, allow_pickle=False)
        except Exception as exc:  # numpy raises several types for a corrupt file
            raise AdtagError(f"{where}: not a readable .npy array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise AdtagError(f"{where}: expected numbers, got dtype {arr.dtype}")
    if arr.shape != (len(tags),):
        raise AdtagError(f"{where}: expected {len(tags)} scores (one per tag, vocabulary order), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise AdtagError(f"{where}: contains NaN or infinite values")
    if arr.min() < 0 or arr.max() > 1:
        raise AdtagError(f"{where}: scores must be probabilities in [0, 1], found {float(arr.min()):g}..{arr.max():g}")
    return arr.astype(np.float32)


def score_matrix(items: Iterable[Any], name: str, tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of model ``name`` for every item, (n, L), and which items have them, (n,)."""
    items = list(items)
    mat = np.zeros((len(items), len(tags)), np.float32)
    mask = np.zeros(len(items), bool)
    for i, it in enumerate(items):
        value = it.scores.get(name)
        if value is not None:
            mat[i] = score_vector(value, tags, f"item {it.id!r}, scores.{name}")
            mask[i] = True
    return mat, mask


def _strip(vid: str) -> str:
    return vid[:-4] if vid.endswith(".mp4") else vid


def read_score_file(path: Path, tags: list[str] | None = None) -> dict[str, dict[str, float]]:
    """A TAAC submission JSON as {id: {tag: probability}}; every error names the file and field."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdtagError(f"{path}: scores file not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise AdtagError(f'{path}: expected a TAAC submission object {{"<id>": {{"result": [...]}}}}')
    kind = obj.pop(TYPE_KEY, "probabilities")
    if kind not in TYPES:
        raise AdtagError(f"{path}: field {TYPE_KEY!r} must be one of {list(TYPES)}, got {kind!r}")
    known = set(tags) if tags is not None else None
    out: dict[str, dict[str, float]] = {}
    for vid, entry in obj.items():
        where = f"{path}: entry {vid!r}"
        try:
            res = entry["result"][0]
            labels, scores = res["labels"], res["scores"]
        except (KeyError, IndexError, TypeError):
            raise AdtagError(f"{where}: expected {{'result': [{{'labels': [...], 'scores': [...]}}]}}") from None
        if not isinstance(labels, list) or not isinstance(scores, list) or len(labels) != len(scores):
            raise AdtagError(f"{where}: 'labels' and 'scores' must be lists of the same length")
        row: dict[str, float] = {}
        for tag, s in zip(labels, scores, strict=True):
            if not isinstance(tag, str):
                raise AdtagError(f"{where}: labels: expected tag strings, got {tag!r}")
            if known is not None and tag not in known:
                raise AdtagError(f"{where}: labels: unknown tag {tag!r} (not among the vocabulary's {len(known)} tags)")
            if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
                raise AdtagError(f"{where}: scores: expected finite numbers, got {s!r} for {tag!r}")
            if kind == "logits":
                s = 1 / (1 + math.exp(-max(min(s, 50.0), -50.0)))
            elif not 0 <= s <= 1:
                raise AdtagError(
                    f"{where}: scores: {s!r} for {tag!r} is outside [0, 1] "
                    f'(a file of logits declares "{TYPE_KEY}": "logits")'
                )
            row[tag] = float(s)
        out[_strip(str(vid))] = row
    return out


def parse_score_option(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise AdtagError(f"--scores: expected NAME=PRED.json, got {text!r}")
    return name, Path(path)


def attach_score_files(
    items: list[Any], options: list[str] | None, tags: list[str] | None, log: Callable[[str], None] = print
) -> None:
    """Read every ``--scores NAME=PRED.json`` and give each matching item its scores (in place).

    All files are read and checked before any item changes, so a bad file leaves nothing half-done.
    """
    staged = []
    taken = set()
    for it in items:
        taken.update(it.text, it.features, it.scores)
    for opt in options or []:
        name, path = parse_score_option(opt)
        if name in taken:
            raise AdtagError(f"--scores {opt}: the name {name!r} is already a modality of the manifest")
        taken.add(name)
        rows = read_score_file(path, tags)
        ids = {it.id for it in items}
        matched = ids & set(rows)
        if not matched:
            raise AdtagError(
                f"{path}: none of its {len(rows)} ids is in the manifest (ids as in the manifest, '.mp4' dropped)"
            )
        staged.append((name, rows))
        extra = len(rows) - len(matched)
        log(
            f"scores {name}: {len(matched)} of {len(items)} items scored by {path}"
            + (f"; {extra} ids of the file are not in the manifest (ignored)" if extra else "")
        )
    for name, rows in staged:
        for it in items:
            if it.id in rows:
                it.scores[name] = rows[it.id]


# Scores this good on the training items, with a third of the best learned branch's out-of-fold
# error (1 - GAP) or less, were most likely produced by a model trained on these items.
IN_SAMPLE_GAP = 0.9
IN_SAMPLE_ERROR_RATIO = 1 / 3


def in_sample_warnings(branch_gap: dict[str, float | None], kinds: dict[str, str]) -> list[str]:
    """A warning per score modality that looks in-sample: far better on the training items than every
    learned branch out-of-fold (``branch_gap``: branch -> GAP@20; ``kinds``: modality -> kind)."""
    scored = {n: kinds.get(n.split("/")[0]) == "scores" for n, g in branch_gap.items() if g is not None}
    best = max((branch_gap[n] for n, s in scored.items() if not s), default=None)
    vs = f", far above every branch's out-of-fold GAP (best {best:.4f})" if best is not None else ""
    return [
        f"scores {name.split('/')[0]!r} reach GAP@20 {g:.4f} on the training items{vs}. "
        "Were they produced by a model trained on these items? Scores for training items must be "
        "out-of-sample (K-fold, or a model that never saw them), or the stacker will trust them "
        "more than they deserve on new items."
        for name, s in scored.items()
        if s
        and (g := branch_gap[name]) >= IN_SAMPLE_GAP
        and (best is None or 1 - g <= (1 - best) * IN_SAMPLE_ERROR_RATIO)
    ]
