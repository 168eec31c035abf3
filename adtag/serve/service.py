"""The model behind the API: loaded once, fed by two bounded pools (video extraction, prediction)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adtag import __version__, runtime
from adtag.data.limits import cap_text, max_rows, max_text_chars
from adtag.data.manifest import Item
from adtag.data.modalities import EXTRA, load_array
from adtag.data.scores import score_vector
from adtag.errors import AdtagError
from adtag.models.tagger import Tagger
from adtag.serve import memory
from adtag.serve.errors import ApiError
from adtag.serve.pool import BoundedPool
from adtag.serve.schemas import TagRequest
from adtag.tagging import TagScore, VideoRead, clean_id, explain_items, read_video

log = logging.getLogger("adtag.serve")
TMP_PREFIX = "adtag-serve-"


@dataclass
class ServeConfig:
    model_dir: Path
    workers: int = 1  # concurrent video extractions, each with its own loaded encoders
    queue: int = 4  # uploads waiting for an extraction worker before 503
    receiving: int = 16  # upload bodies being received at once (a slow client holds one, not a worker)
    threads: int = 1  # CPU threads per extraction worker and for prediction
    predict_queue: int = 64  # JSON requests waiting for the predictor before 503
    max_upload: int = 200 * 1024 * 1024
    max_json: int = 32 * 1024 * 1024
    token: str | None = None
    private_docs: bool = False  # /docs, /redoc and /openapi.json need the token too
    tmp_dir: Path | None = None  # the service makes its own folder inside it (default: system temp)
    warm: bool = True  # load the extraction encoders at start-up, not on the first upload
    body_grace_s: float = 3.0  # a request body may take this long before the minimum rate applies
    min_body_rate: float = 16 * 1024  # bytes/s a body must average after the grace time, else 408
    predict_timeout_s: float = 30.0  # a JSON request waiting or running longer gets 503
    echo_chars: int = 2000  # text sent back in an answer is cut to this many characters per modality


def remove_stale_folders(base: Path) -> list[Path]:
    """Remove ``adtag-serve-<pid>-*`` folders whose server is gone (killed before it could clean up)."""
    removed = []
    for folder in base.glob(f"{TMP_PREFIX}*-*"):
        pid_text = folder.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            continue
        pid = int(pid_text)
        if pid != os.getpid():  # a container restart can give us the dead server's pid
            try:
                os.kill(pid, 0)
                continue  # that server is alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class TaggingService:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        memory.limit_arenas()
        runtime.configure(config.threads)
        self.tagger = Tagger.load(config.model_dir)
        self.specs = {s.name: s for s in self.tagger.specs_}
        self.encoders: dict[str, str] | None = (
            dict(self.tagger.config.encoders) if self.tagger.config.encoders else None
        )
        base = Path(config.tmp_dir or tempfile.gettempdir())
        for folder in remove_stale_folders(base):
            log.warning("removed %s, left by a server that did not shut down cleanly", folder)
        self.tmp_dir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=base))
        self._local = threading.local()
        self.extract_pool = BoundedPool("extract", config.workers, config.queue, self._init_worker)
        self.predict_pool = BoundedPool("predict", 1, config.predict_queue)
        self.receive_pool = BoundedPool("upload", config.receiving, 0)  # counts bodies; runs nothing

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self) -> None:
        """Build cached encoder files once, then load the encoders in every extraction worker."""
        text_names = [n for n, s in self.specs.items() if s.kind == "text"]
        if text_names:  # the first Chinese text loads jieba's dictionary (seconds): not on a request
            warm = Item(id="warm-up", text={n: "广告 warm-up" for n in text_names})
            self.predict_pool.executor.submit(self.explain, [warm], 1).result()
        if self.encoders is None:
            return
        from adtag.encoders import prepare_encoder
        from adtag.features.pipeline import resolve_encoders

        for spec in resolve_encoders(self.encoders).values():
            prepare_encoder(spec)
        if self.config.warm:
            barrier = threading.Barrier(self.config.workers)  # one task per worker thread
            futures = [self.extract_pool.executor.submit(barrier.wait, 600) for _ in range(self.config.workers)]
            for f in futures:
                f.result()

    def close(self) -> None:
        self.extract_pool.shutdown()
        self.predict_pool.shutdown()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def _init_worker(self) -> None:
        # Each worker owns its encoders: they keep per-video state, so threads must not share them.
        if self.encoders is not None:
            from adtag.features.pipeline import Extractor

            self._local.extractor = Extractor(self.encoders, threads=self.config.threads)

    # ------------------------------------------------------------------ model facts
    def model_info(self) -> dict[str, Any]:
        d = self.tagger.describe()
        return {
            "tags": d["tags"],
            "modalities": d["modalities"],
            "branches": d["branches"],
            "encoders": self.encoders,
            "metrics": d["metrics"] or {},
            "adtag_version": __version__,
            "video_uploads": self.encoders is not None,
        }

    def health(self) -> dict[str, Any]:
        """Load per pool; "saturated" when a pool is full or a prediction runs past its deadline."""
        pools = {"receive": self.receive_pool, "extract": self.extract_pool, "predict": self.predict_pool}
        running = {k: round(p.longest_running(), 3) for k, p in pools.items() if k != "receive"}
        saturated = [k for k, p in pools.items() if p.full]
        if running["predict"] > self.config.predict_timeout_s and "predict" not in saturated:
            saturated.append("predict")
        return {
            "status": "saturated" if saturated else "ok",
            "model_tags": len(self.tagger.vocab_.tags),
            "busy": {k: p.held for k, p in pools.items()},
            "capacity": {k: p.capacity for k, p in pools.items()},
            "running_s": running,
            "saturated": saturated,
        }

    # ------------------------------------------------------------------ JSON modalities
    def item_from_request(self, req: TagRequest, where: str = "body") -> tuple[Item, list[str]]:
        """Check every modality against the model's: names, kinds, shapes, finite values.

        Returns the item and warnings (a text cut to the per-modality cap)."""
        text_names = [n for n, s in self.specs.items() if s.kind == "text"]
        array_names = [n for n, s in self.specs.items() if s.kind in ("vector", "sequence")]
        extra = self.specs.get(EXTRA)
        warnings = []
        text = {}
        for name, value in req.text.items():
            if name not in text_names:
                raise ApiError(422, f"{where}.text.{name}: unknown text modality; the model has {text_names[:50]}")
            text[name] = cap_text(value)
            if len(text[name]) < len(value):
                cap = max_text_chars()
                warnings.append(
                    f"{where}.text.{name}: {len(value)} characters; kept the first and last {cap // 2} "
                    f"(the per-modality cap is {cap})"
                )
        features: dict[str, np.ndarray] = {}
        for name, value in req.features.items():
            field = f"{where}.features.{name}"
            spec = self.specs.get(name)
            if spec is None or name not in array_names:
                raise ApiError(422, f"{field}: unknown feature modality; the model has {array_names[:50]}")
            if spec.kind == "sequence" and len(value) > max_rows():
                raise ApiError(422, f"{field}: at most {max_rows()} rows, got {len(value)}")
            try:
                arr = np.asarray(value, dtype=np.float32)
            except ValueError:
                raise ApiError(422, f"{field}: rows of a sequence must all have the same length") from None
            want = f"({spec.dim},)" if spec.kind == "vector" else f"(T, {spec.dim})"
            ok = arr.shape == (spec.dim,) if spec.kind == "vector" else (arr.ndim == 2 and arr.shape[1] == spec.dim)
            if not ok or arr.size == 0:
                raise ApiError(422, f"{field}: expected shape {want} for a {spec.kind}, got {arr.shape}")
            try:
                features[name] = load_array(arr, req.id, name)
            except AdtagError as exc:
                raise ApiError(422, f"{field}: {exc}") from None
        columns = extra.columns if extra is not None else []
        for name, v in req.extra.items():
            if name not in columns:
                raise ApiError(422, f"{where}.extra.{name}: unknown extra; the model has {columns[:50]}")
            if not np.isfinite(v):
                raise ApiError(422, f"{where}.extra.{name}: must be a finite number")
        scores: dict[str, np.ndarray] = {}
        score_names = [n for n, s in self.specs.items() if s.kind == "scores"]
        for name, value in req.scores.items():
            if name not in score_names:
                raise ApiError(422, f"{where}.scores.{name}: unknown score modality; the model has {score_names}")
            try:
                raw = value if isinstance(value, dict) else np.asarray(value, dtype=np.float32)
                scores[name] = score_vector(raw, self.specs[name].columns, f"{where}.scores.{name}")
            except AdtagError as exc:
                raise ApiError(422, str(exc)) from None
        item = Item(id=clean_id(req.id), text=text, features=features, extra=dict(req.extra))  # type: ignore[arg-type]
        item.scores = dict(scores)
        return item, warnings

    def explain(self, items: list[Item], top_k: int | list[int]) -> list[tuple[list[TagScore], dict[str, Any]]]:
        """Top tags per item, with the decided tags and review band when the model has a decision
        layer; runs on the predict pool's single thread (the tagger is not shared)."""
        from adtag.decisions.decider import decided_fields

        return list(zip(explain_items(self.tagger, items, top_k), decided_fields(self.tagger, items), strict=True))

    # ------------------------------------------------------------------ video uploads
    def extract(self, path: Path, item_id: str, language: str | None, thumbnails: bool) -> VideoRead:
        """On an extraction worker: the video's modalities, stage timings, warnings, thumbnails."""
        extractor = getattr(self._local, "extractor", None)
        if extractor is None:  # pragma: no cover - the initializer always sets it when encoders exist
            raise ApiError(422, "this model has no recorded encoders: send extracted modalities as JSON")
        try:
            return read_video(path, extractor, language=language, item_id=item_id, thumbnails=thumbnails)
        finally:
            memory.trim()  # decoded frames and encoder buffers go back to the system between uploads
