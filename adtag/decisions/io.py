"""Predictions with decisions: the TAAC submission format plus ``decided`` and ``review`` lists.

``{"<id>": {"result": [{"labels": [...], "scores": [...], "decided": [...], "review": [...]}]}}``:
the extra keys are ignored by the official evaluator; scores are calibrated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from adtag.data.predictions import to_submission
from adtag.decisions.decider import Decider
from adtag.errors import AdtagError
from adtag.io import write_json


def decided_submission(
    ids: list[str], scores: np.ndarray, decider: Decider, top_k: int = 20, decide_on: np.ndarray | None = None
) -> dict:
    """Ranked calibrated ``scores``; ``decided`` and ``review`` from ``decide_on`` (the decision layer's
    refits' scores, ``fit.scores_for_decisions``) when given, else from ``scores``."""
    cal, decided, review = decider.decide(scores, decide_on)
    sub = to_submission(ids, cal, decider.tags, top_k)
    for i, vid in enumerate(ids):
        order = np.argsort(-cal[i], kind="stable")
        res = sub[vid]["result"][0]
        res["decided"] = [decider.tags[j] for j in order if decided[i, j]]
        res["review"] = [decider.tags[j] for j in order if review[i, j]]
    return sub


def write_decided_predictions(
    path: str | os.PathLike,
    ids: list[str],
    scores: np.ndarray,
    decider: Decider,
    top_k: int = 20,
    decide_on: np.ndarray | None = None,
) -> None:
    write_json(path, decided_submission(ids, scores, decider, top_k, decide_on), indent=None)


def read_decided(path: str | os.PathLike) -> dict[str, list[str]] | None:
    """``id -> decided tags`` from a predictions file, or None when it holds no decisions."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdtagError(f"{path}: unreadable predictions ({exc})") from None
    out = {}
    for vid, entry in obj.items() if isinstance(obj, dict) else []:
        try:
            res = entry["result"][0]
        except (KeyError, IndexError, TypeError):
            continue
        if "decided" in res:
            if not isinstance(res["decided"], list):
                raise AdtagError(f"{path}: entry {vid!r}: 'decided' must be a list of tags")
            out[vid[:-4] if vid.endswith(".mp4") else vid] = [str(t) for t in res["decided"]]
    return out or None
