"""``adtag extract --engine ray``: videos stream through a pool of Ray actors into one feature store.

The result is the store the local engine writes (same ``items/``, ``journal.jsonl``, ``store.json``
and ``manifest.jsonl``). Actors write each video's arrays straight into the store, so its folder
must be on a file system every node mounts at the same path (NFS, a cluster file system, a
FUSE-mounted bucket); each actor checks at start that it can write there. Only the driver writes
the journal, one line per finished video, after the arrays are in place: a killed driver or a
lost node costs at most the videos in flight, and the same command resumes.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adtag.data.manifest import Item
from adtag.engines.ray_cluster import WORKER_ENV, cluster_cpus
from adtag.engines.ray_pool import run_actor_pool
from adtag.errors import AdtagError
from adtag.features.extract import extract_task, merge_extracted, pending_tasks
from adtag.features.inputs import source_key
from adtag.features.pipeline import resolve_encoders
from adtag.features.store import Failure, FeatureStore


class ExtractWorker:
    """One Ray actor: the encoders loaded once, videos extracted one at a time into the store."""

    def __init__(self, specs: dict[str, str], threads: int, root: str, gather: bool) -> None:
        os.environ.update({**WORKER_ENV, "OMP_NUM_THREADS": str(threads)})
        self.specs, self.threads, self.root, self.gather = specs, threads, root, gather
        self.extractor = None

    def ready(self) -> dict[str, Any]:
        """Check the store is writable from this node, then load the encoders; returns where it runs."""
        host = socket.gethostname()
        if not self.gather:
            probe = Path(self.root) / f".probe-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            try:
                probe.write_bytes(b"ok")
                probe.unlink()
            except OSError as exc:
                raise AdtagError(
                    f"a Ray worker on {host} cannot write to the feature store {self.root} ({exc.strerror or exc}); "
                    "--engine ray needs --out on a file system every node mounts at the same path "
                    "(or --gather to send arrays back to the driver)"
                ) from None
        from adtag.features.pipeline import Extractor

        self.extractor = Extractor(self.specs, threads=self.threads)
        return {"host": host, "pid": os.getpid()}

    def extract(self, task: dict[str, Any]) -> dict[str, Any]:
        """Extract one video and write its arrays (or return them); a failure is a reason, not an exception."""
        out = extract_task(self.extractor, task, None if self.gather else self.root)
        if out["ok"]:
            out["pid"] = os.getpid()
        return out


def extract_to_dir_ray(
    inputs: list[Item],
    out_dir: str | os.PathLike,
    encoders: Mapping[str, str | None] | None = None,
    workers: int | None = None,
    threads: int = 1,
    language: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    gather: bool = False,
) -> tuple[Path | None, list[Failure]]:
    """``extract_to_dir`` on the connected Ray cluster: ``workers`` actors (default: one per CPU).

    ``gather=True`` returns each video's arrays to the driver, which writes them: no shared file
    system needed, at the cost of moving every array through the driver (fine for a few nodes).
    """
    import ray
    from tqdm import tqdm

    specs = resolve_encoders(encoders)
    store = FeatureStore(out_dir, config={"encoders": specs})
    store.remove_partial()
    root = str(store.root.resolve())
    by_source, tasks = pending_tasks(store, inputs, language, retry_failed)
    for task in tasks:
        task["video"] = str(Path(task["video"]).resolve())  # actors on other nodes see absolute paths

    bar = tqdm(
        total=len(inputs), initial=len(inputs) - len(tasks), unit="video", desc="extract (ray)", disable=not progress
    )
    failed = 0

    def on_result(task: dict[str, Any], result: dict[str, Any]) -> None:
        nonlocal failed
        if result["ok"]:
            if "arrays" in result:
                result["features"] = {k: str(p) for k, p in store.put_arrays(task["id"], result.pop("arrays")).items()}
            store.record_item(merge_extracted(by_source[task["source"]], result), task["source"], result.get("timings"))
        else:
            on_lost(task, result["error"])
            return
        bar.update(1)

    def on_lost(task: dict[str, Any], reason: str) -> None:
        nonlocal failed
        failed += 1
        store.record_failure(Failure(task["id"], task["video"], reason), task["source"])
        bar.set_postfix(failed=failed)
        bar.update(1)

    if tasks:
        for spec in specs.values():  # build cached model files once here, not in every actor
            from adtag.encoders import prepare_encoder

            prepare_encoder(spec)
        n = workers or max(1, cluster_cpus(ray) // threads)
        actor_cls = ray.remote(num_cpus=threads, max_restarts=0)(ExtractWorker)
        try:
            run_actor_pool(
                ray,
                lambda: actor_cls.remote(specs, threads, root, gather),
                tasks,
                submit=lambda actor, task: actor.extract.remote(task),
                on_result=on_result,
                on_lost=on_lost,
                workers=n,
                notify=lambda msg: bar.write(msg, file=sys.stderr),
                describe=lambda task: task["video"],
            )
        finally:
            bar.close()
    else:
        bar.close()
    return store.write_manifest([source_key(it) for it in inputs])
