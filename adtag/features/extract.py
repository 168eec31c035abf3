"""Extraction for users of the library: one video in memory, or many videos into a FEATURE_DIR.

``extract_video(path)`` serves ``adtag predict`` on raw videos and the HTTP service;
``extract_to_dir(inputs, out_dir)`` is ``adtag extract``: parallel workers, each loading the
encoders once, a resumable store, a progress bar, and the failures listed at the end.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import traceback
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.manifest import Item
from adtag.encoders import prepare_encoder
from adtag.errors import AdtagError
from adtag.features.inputs import source_key
from adtag.features.pipeline import DEFAULT_ENCODERS, Extractor, resolve_encoders
from adtag.features.store import Failure, FeatureStore

__all__ = ["DEFAULT_ENCODERS", "Failure", "extract_to_dir", "extract_video", "get_extractor"]


def default_threads(workers: int = 1) -> int:
    """Threads per worker so that the workers together use the machine's cores once."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@functools.cache
def _extractor(specs: tuple[tuple[str, str], ...], threads: int) -> Extractor:
    return Extractor(dict(specs), threads=threads)


def get_extractor(encoders: Mapping[str, str | None] | None = None, threads: int | None = None) -> Extractor:
    """The process's Extractor for these encoders: models are loaded on the first call only."""
    specs = resolve_encoders(encoders)
    return _extractor(tuple(sorted(specs.items())), threads or default_threads())


def extract_video(
    path: str | os.PathLike,
    encoders: Mapping[str, str | None] | None = None,
    language: str | None = None,
    timings: dict[str, Any] | None = None,
    item_id: str | None = None,
) -> Item:
    """Extract one video into an Item whose ``features`` are in-memory float32 arrays.

    ``encoders`` maps roles to registry names (default DEFAULT_ENCODERS, or the dict recorded in a
    model's config); ``language`` forces the ASR language (``"zh"``), else it is detected. Pass a
    dict as ``timings`` to receive seconds per stage (``decode``, ``visual``, ``ocr``, ``audio``,
    ``asr``, ``text``, ...), frame counts and warnings. Models are loaded once per process.
    Raises MediaError (an AdtagError naming the file) when the file yields nothing.
    """
    item, stage_times = get_extractor(encoders).extract(Path(path), item_id=item_id, language=language)
    if timings is not None:
        timings.update(stage_times)
    return item


# -- workers -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(specs: dict[str, str], threads: int) -> None:
    # The parent ran runtime.configure, and spawned workers inherit its environment (OMP/MKL thread
    # counts, offline flags); every encoder also takes ``threads`` explicitly. Calling configure
    # here would import torch, ~190 MiB per worker that the default encoders never use.
    os.environ.update({"OMP_NUM_THREADS": str(threads), "ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"})
    _WORKER["extractor"] = Extractor(specs, threads=threads)


def extract_task(extractor: Extractor, task: dict[str, Any], root: Path | str | None) -> dict[str, Any]:
    """Extract one video and write its arrays into the store at ``root`` (``None``: return them as
    ``arrays``); any failure becomes a reason, never an exception. Local and Ray workers share it."""
    out: dict[str, Any] = {"source": task["source"], "id": task["id"], "video": task["video"]}
    try:
        item, timings = extractor.extract(task["video"], item_id=task["id"], language=task["language"])
        arrays = {k: v for k, v in item.features.items() if isinstance(v, np.ndarray)}
        if root is None:
            out["arrays"] = arrays
        else:
            out["features"] = {k: str(p) for k, p in FeatureStore(root).put_arrays(task["id"], arrays).items()}
        out.update(ok=True, text=item.text, extra=item.extra)
        out["timings"] = {k: v for k, v in timings.items() if isinstance(v, int | float | list)}
    except AdtagError as exc:
        out.update(ok=False, error=getattr(exc, "reason", None) or str(exc))
    except Exception as exc:  # a decoder or model bug on one file must not stop the batch
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}{where}")
    return out


def _work(task: dict[str, Any]) -> dict[str, Any]:
    return extract_task(_WORKER["extractor"], task, task["root"])


class _InProcess:
    """The worker run in this process (``workers=1``): no pickling, models cached across calls."""

    def __init__(self, specs: dict[str, str], threads: int) -> None:
        self.extractor = get_extractor(specs, threads)

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        _WORKER["extractor"] = self.extractor
        return _work(task)


def merge_extracted(base: Item, result: dict[str, Any]) -> Item:
    """The input item (tags, external scores and any fields it had) plus what extraction produced."""
    return Item(
        id=base.id,
        tags=base.tags,
        video=base.video,
        text={**base.text, **result["text"]},
        features={**base.features, **{k: Path(p) for k, p in result["features"].items()}},
        extra={**base.extra, **result["extra"]},
        scores=dict(base.scores),
    )


def pending_tasks(
    store: FeatureStore, inputs: list[Item], language: str | None, retry_failed: bool
) -> tuple[dict[str, Item], list[dict[str, Any]]]:
    """Inputs by source key, and one task per video the store has not done yet (an item without a
    video is recorded as failed here). Shared by the local and Ray engines."""
    by_source = dict(zip([source_key(it) for it in inputs], inputs, strict=True))
    done = store.done(retry_failed=retry_failed)
    tasks = []
    for source, item in by_source.items():
        if source in done:
            continue
        if item.video is None:
            store.record_failure(Failure(item.id, "", "manifest item has no 'video' path"), source)
            continue
        tasks.append({"source": source, "id": item.id, "video": str(item.video), "language": language})
    return by_source, tasks


def extract_to_dir(
    inputs: list[Item],
    out_dir: str | os.PathLike,
    encoders: Mapping[str, str | None] | None = None,
    workers: int = 1,
    threads: int | None = None,
    language: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> tuple[Path | None, list[Failure]]:
    """Extract ``inputs`` (Items with ``video`` paths) into ``out_dir``; resume what a past run did.

    Returns the manifest path (None when no item succeeded) and the failures, in input order.
    Items without a video path are failures. The encoders must match those ``out_dir`` was
    started with (AdtagError otherwise).
    """
    specs = resolve_encoders(encoders)
    threads = threads or default_threads(workers)
    store = FeatureStore(out_dir, config={"encoders": specs})
    store.remove_partial()
    root = str(store.root.resolve())
    by_source, tasks = pending_tasks(store, inputs, language, retry_failed)
    for task in tasks:
        task["root"] = root

    from tqdm import tqdm

    bar = tqdm(total=len(inputs), initial=len(inputs) - len(tasks), unit="video", desc="extract", disable=not progress)
    failed = 0

    def finish(result: dict[str, Any]) -> None:
        nonlocal failed
        if result["ok"]:
            item = merge_extracted(by_source[result["source"]], result)
            store.record_item(item, result["source"], result.get("timings"))
        else:
            failed += 1
            store.record_failure(Failure(result["id"], result["video"], result["error"]), result["source"])
            bar.set_postfix(failed=failed)
        bar.update(1)

    try:
        if not tasks:
            pass
        elif min(workers, len(tasks)) <= 1:  # a worker costs a model load: never more than videos
            run = _InProcess(specs, threads)
            for task in tasks:
                finish(run(task))
        else:
            for spec in specs.values():  # build cached model files once, not in every worker
                prepare_encoder(spec)
            _run_pool(tasks, specs, min(workers, len(tasks)), threads, finish)
    finally:
        bar.close()
    return store.write_manifest([source_key(it) for it in inputs])


def _run_pool(tasks: list[dict[str, Any]], specs: dict[str, str], workers: int, threads: int, finish: Any) -> None:
    """Feed tasks to a process pool, a few in flight per worker; survive a worker that dies.

    When a worker dies (a crash in native code, or out of memory) the videos that were in flight
    are retried one at a time in a new pool, so the one that kills a worker is recorded as the
    failure and the others still succeed.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent holding threads and models
    queue = list(reversed(tasks))
    suspects: set[str] = set()
    while queue:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(specs, threads))
        pending: dict[Future, dict[str, Any]] = {}
        try:
            while queue or pending:
                alone = any(t["source"] in suspects for t in pending.values())
                while queue and len(pending) < 2 * workers and not alone:
                    if queue[-1]["source"] in suspects and pending:
                        break
                    task = queue.pop()
                    pending[pool.submit(_work, task)] = task
                    alone = task["source"] in suspects
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in ready:
                    result = fut.result()  # raises BrokenProcessPool if the worker died
                    finish(result)
                    del pending[fut]
        except BrokenProcessPool:
            for task in pending.values():
                if task["source"] in suspects and len(pending) == 1:
                    finish({**task, "ok": False, "error": "the worker process died on it (a crash or out of memory)"})
                else:
                    suspects.add(task["source"])
                    queue.append(task)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def load_timings(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Per-video stage timings recorded in a FEATURE_DIR's journal (for benchmarks and reports)."""
    return [json.loads(json.dumps(r.get("timings") or {})) for r in FeatureStore(out_dir).records() if r.get("ok")]
