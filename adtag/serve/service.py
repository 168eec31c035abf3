"""The model behind the API: loaded once, fed by two bounded pools (video extraction, prediction)."""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adtag import __version__, runtime
from adtag.data.manifest import Item
from adtag.data.modalities import EXTRA, load_array
from adtag.data.scores import score_vector
from adtag.errors import AdtagError
from adtag.models.tagger import Tagger
from adtag.serve.errors import ApiError
from adtag.serve.pool import BoundedPool
from adtag.serve.schemas import TagRequest

MAX_ROWS = 4096  # frames in one sequence array


@dataclass
class ServeConfig:
    model_dir: Path
    workers: int = 1  # concurrent video extractions, each with its own loaded encoders
    queue: int = 4  # uploads waiting for an extraction worker before 503
    threads: int = 1  # CPU threads per extraction worker and for prediction
    predict_queue: int = 64  # JSON requests waiting for the predictor before 503
    max_upload: int = 200 * 1024 * 1024
    max_json: int = 32 * 1024 * 1024
    token: str | None = None
    tmp_dir: Path | None = None  # the service makes its own folder inside it (default: system temp)
    warm: bool = True  # load the extraction encoders at start-up, not on the first upload


class TaggingService:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        runtime.configure(config.threads)
        self.tagger = Tagger.load(config.model_dir)
        self.specs = {s.name: s for s in self.tagger.specs_}
        self.encoders: dict[str, str] | None = (
            dict(self.tagger.config.encoders) if self.tagger.config.encoders else None
        )
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="adtag-serve-", dir=config.tmp_dir))
        self._local = threading.local()
        self.extract_pool = BoundedPool("extract", config.workers, config.queue, self._init_worker)
        self.predict_pool = BoundedPool("predict", 1, config.predict_queue)

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self) -> None:
        """Build cached encoder files once, then load the encoders in every extraction worker."""
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

    # ------------------------------------------------------------------ JSON modalities
    def item_from_request(self, req: TagRequest, where: str = "body") -> Item:
        """Check every modality against the model's: names, kinds, shapes, finite values."""
        text_names = [n for n, s in self.specs.items() if s.kind == "text"]
        array_names = [n for n, s in self.specs.items() if s.kind in ("vector", "sequence")]
        extra = self.specs.get(EXTRA)
        for name in req.text:
            if name not in text_names:
                raise ApiError(422, f"{where}.text.{name}: unknown text modality; the model has {text_names}")
        features: dict[str, np.ndarray] = {}
        for name, value in req.features.items():
            field = f"{where}.features.{name}"
            spec = self.specs.get(name)
            if spec is None or name not in array_names:
                raise ApiError(422, f"{field}: unknown feature modality; the model has {array_names}")
            try:
                arr = np.asarray(value, dtype=np.float32)
            except ValueError:
                raise ApiError(422, f"{field}: rows of a sequence must all have the same length") from None
            want = f"({spec.dim},)" if spec.kind == "vector" else f"(T, {spec.dim})"
            ok = arr.shape == (spec.dim,) if spec.kind == "vector" else (arr.ndim == 2 and arr.shape[1] == spec.dim)
            if not ok or arr.size == 0:
                raise ApiError(422, f"{field}: expected shape {want} for a {spec.kind}, got {arr.shape}")
            if arr.shape[0] > MAX_ROWS and spec.kind == "sequence":
                raise ApiError(422, f"{field}: at most {MAX_ROWS} rows, got {arr.shape[0]}")
            try:
                features[name] = load_array(arr, req.id, name)
            except AdtagError as exc:
                raise ApiError(422, f"{field}: {exc}") from None
        columns = extra.columns if extra is not None else []
        for name, v in req.extra.items():
            if name not in columns:
                raise ApiError(422, f"{where}.extra.{name}: unknown extra; the model has {columns}")
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
        item = Item(id=req.id, text=dict(req.text), features=features, extra=dict(req.extra))  # type: ignore[arg-type]
        item.scores = dict(scores)
        return item

    def explain(self, items: list[Item], top_k: int | list[int]) -> list[list[dict[str, Any]]]:
        """Top tags per item; runs on the predict pool's single thread (the tagger is not shared)."""
        ks = top_k if isinstance(top_k, list) else [top_k] * len(items)
        rows = self.tagger.explain(items, top_k=max(ks))
        return [r[:k] for r, k in zip(rows, ks, strict=True)]

    # ------------------------------------------------------------------ video uploads
    def extract(self, path: Path, item_id: str, language: str | None, thumbnails: bool) -> dict[str, Any]:
        """On an extraction worker: the item, stage timings, warnings and optional thumbnails."""
        extractor = getattr(self._local, "extractor", None)
        if extractor is None:  # pragma: no cover - the initializer always sets it when encoders exist
            raise ApiError(422, "this model has no recorded encoders: send extracted modalities as JSON")
        item, timings = extractor.extract(path, item_id=item_id, language=language)
        out: dict[str, Any] = {"item": item, "warnings": [str(w) for w in timings.get("warnings", [])]}
        out["timings"] = {k: float(v) for k, v in timings.items() if isinstance(v, float)}
        if thumbnails:
            t0 = time.perf_counter()
            out["thumbnails"] = thumbnail_uris(path)
            out["timings"]["thumbnails"] = time.perf_counter() - t0
        return out


def thumbnail_uris(path: Path, n: int = 6, height: int = 72) -> list[str]:
    from PIL import Image

    from adtag.report.thumbnails import thumbnail_strip

    uris = []
    for frame in thumbnail_strip(path, n=n, height=height):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return uris
