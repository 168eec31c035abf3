"""Predictions in the TAAC submission format and ground truth in the formats people have.

Predictions: ``{"<id>": {"result": [{"labels": [...], "scores": [...]}]}}``, top-k by score.
Truth: a manifest (.jsonl), a TAAC ground-truth JSON (``{"<id>.mp4": {"annotations":
[{"labels": [...]}]}}``) or a ``tagging_info.txt``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from adtag.errors import AdtagError
from adtag.io import write_json


def ranked(scores: np.ndarray, tags: list[str], top_k: int) -> list[list[tuple[str, float]]]:
    k = min(top_k, scores.shape[1])
    out = []
    for row in scores:
        idx = np.argsort(-row, kind="stable")[:k]
        out.append([(tags[j], float(row[j])) for j in idx])
    return out


def to_submission(ids: list[str], scores: np.ndarray, tags: list[str], top_k: int = 20) -> dict:
    return {
        vid: {"result": [{"labels": [t for t, _ in r], "scores": [round(s, 6) for _, s in r]}]}
        for vid, r in zip(ids, ranked(scores, tags, top_k), strict=True)
    }


def write_predictions(
    path: str | os.PathLike, ids: list[str], scores: np.ndarray, tags: list[str], top_k: int = 20
) -> None:
    write_json(path, to_submission(ids, scores, tags, top_k), indent=None)


def _strip(vid: str) -> str:
    return vid[:-4] if vid.endswith(".mp4") else vid


def read_predictions(path: str | os.PathLike) -> dict[str, list[tuple[str, float]]]:
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdtagError(f"{path}: predictions file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise AdtagError(f"{path}: expected an object {{id: {{'result': [...]}}}}")
    out = {}
    for vid, entry in obj.items():
        try:
            res = entry["result"][0]
            labels, scores = res["labels"], res["scores"]
            if len(labels) != len(scores):
                raise ValueError("labels and scores differ in length")
            out[_strip(vid)] = [(str(t), float(s)) for t, s in zip(labels, scores, strict=True)]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise AdtagError(
                f"{path}: entry {vid!r} is not {{'result': [{{'labels': [...], 'scores': [...]}}]}} ({exc})"
            ) from None
    return out


def read_truth(path: str | os.PathLike) -> dict[str, list[str]]:
    """Ground truth from a manifest, a TAAC ground-truth JSON or a tagging_info.txt."""
    from adtag.data.manifest import read_items
    from adtag.data.taac import read_tagging_info

    path = Path(path)
    if not path.is_file():
        raise AdtagError(f"{path}: ground truth not found")
    if path.suffix == ".txt":
        return read_tagging_info(path)
    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            return {_strip(k): list(v["annotations"][0]["labels"]) for k, v in obj.items()}
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise AdtagError(f"{path}: not a TAAC ground-truth JSON ({type(exc).__name__}: {exc})") from None
    return {it.id: list(it.tags or []) for it in read_items(path) if it.tags}
