"""``adtag predict --engine ray``: batch scoring on a pool of Ray actors, each holding the loaded Tagger.

A manifest is scored in batches of items; raw videos one per task (extracted with the encoders the
model records, then scored). The driver puts the scores back in input order and writes the same
TAAC JSON as the local engine. MODEL_DIR, and the inputs, must be readable at the same path on
every node.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.manifest import Item
from adtag.engines.ray_cluster import WORKER_ENV, cluster_cpus
from adtag.engines.ray_pool import run_actor_pool
from adtag.errors import AdtagError

BATCH = 256  # most manifest items per task: scheduling is noise next to scoring this many


class PredictWorker:
    """One Ray actor: the Tagger loaded once; scores a batch of items or extracts and scores one video."""

    def __init__(self, model_dir: str, threads: int) -> None:
        os.environ.update({**WORKER_ENV, "OMP_NUM_THREADS": str(threads)})
        self.model_dir, self.threads, self.tagger = model_dir, threads, None

    def ready(self) -> dict[str, Any]:
        from adtag import runtime
        from adtag.models.tagger import Tagger

        runtime.configure(self.threads)
        host = socket.gethostname()
        if not Path(self.model_dir).is_dir():
            raise AdtagError(
                f"a Ray worker on {host} cannot see the model folder {self.model_dir}; it must be "
                "readable at the same path on every node"
            )
        self.tagger = Tagger.load(Path(self.model_dir))
        return {"host": host, "pid": os.getpid()}

    def score(self, items: list[Item], decide: bool = False) -> np.ndarray:
        """(n, tags) scores; ``decide``: (n, 2, tags), the ranked scores and those the decision layer decides on."""
        if not decide:
            return self.tagger.predict_proba(items)
        from adtag.decisions.fit import scores_for_decisions

        return np.stack(scores_for_decisions(self.tagger, items), axis=1)

    def score_video(self, task: dict[str, Any]) -> dict[str, Any]:
        from adtag.features.extract import extract_video

        try:
            item = extract_video(
                task["video"], self.tagger.config.encoders, language=task["language"], item_id=task["id"]
            )
        except AdtagError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "scores": self.score([item], task.get("decide", False))[0]}


def predict_ray(
    model_dir: Path,
    items: list[Item] | None = None,
    videos: list[Item] | None = None,
    language: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    progress: bool = True,
    decide: bool = False,
) -> tuple[list[str], np.ndarray | None, list[str]]:
    """Score ``items`` (loaded features) or ``videos`` (Items with a video path) on the cluster.

    Returns the ids scored, their scores (n, tags) in input order, and failures as "video: reason".
    ``decide``: the scores are (n, 2, tags), the ranked ones and those the decision layer decides on
    (``adtag.decisions.fit.scores_for_decisions``), as ``adtag predict --decide`` needs them.
    """
    import ray
    from tqdm import tqdm

    n = workers or max(1, cluster_cpus(ray) // threads)
    if items is not None:
        batch = max(1, min(BATCH, -(-len(items) // (4 * n))))  # a few batches per actor, so none idles long
        tasks = [
            {"kind": "items", "index": i, "items": items[i : i + batch], "decide": decide}
            for i in range(0, len(items), batch)
        ]
        total, unit = len(items), "item"
    else:
        tasks = [
            {"kind": "video", "index": i, "id": it.id, "video": str(Path(it.video).resolve())}
            | {"language": language, "decide": decide}
            for i, it in enumerate(videos or [])
        ]
        total, unit = len(tasks), "video"
    rows: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    bar = tqdm(total=total, unit=unit, desc="predict (ray)", disable=not progress)

    def on_result(task: dict[str, Any], value: Any) -> None:
        if task["kind"] == "items":
            for j, row in enumerate(value):
                rows[task["index"] + j] = row
            bar.update(len(task["items"]))
        elif value["ok"]:
            rows[task["index"]] = value["scores"]
            bar.update(1)
        else:
            on_lost(task, value["error"])

    def on_lost(task: dict[str, Any], reason: str) -> None:
        if task["kind"] == "items":
            raise AdtagError(f"items {task['index']}..{task['index'] + len(task['items']) - 1}: {reason}")
        failures[task["index"]] = f"{task['video']}: {reason}"
        bar.update(1)

    actor_cls = ray.remote(num_cpus=threads, max_restarts=0)(PredictWorker)
    model = str(Path(model_dir).resolve())
    try:
        run_actor_pool(
            ray,
            lambda: actor_cls.remote(model, threads),
            tasks,
            submit=lambda a, t: (
                a.score.remote(t["items"], t["decide"]) if t["kind"] == "items" else a.score_video.remote(t)
            ),
            on_result=on_result,
            on_lost=on_lost,
            workers=n,
            notify=lambda msg: bar.write(msg, file=sys.stderr),
            describe=lambda t: t.get("video") or f"items from {t['index']}",
        )
    finally:
        bar.close()
    source = items if items is not None else videos or []
    order = sorted(rows)
    ids = [source[i].id for i in order]
    scores = np.stack([rows[i] for i in order]) if order else None
    return ids, scores, [failures[i] for i in sorted(failures)]
