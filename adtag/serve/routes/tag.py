"""POST /v1/tag (a video upload or JSON modalities) and POST /v1/tag/batch."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from adtag.errors import AdtagError
from adtag.serve.bodies import disconnected, form_int, form_language, paced, parse, read_json
from adtag.serve.errors import ApiError
from adtag.serve.schemas import MAX_TOP_K, BatchRequest, BatchResponse, TagRequest, TagResponse, errors, ref
from adtag.serve.service import TaggingService
from adtag.serve.uploads import receive_upload
from adtag.tagging import TagResult, clean_id, modalities_of

BODIES = {"application/json": {"schema": ref("TagRequest")}, "multipart/form-data": {"schema": ref("UploadForm")}}


def tag_router(svc: TaggingService) -> APIRouter:
    config = svc.config
    router = APIRouter(tags=["tag"])

    def gone(request: Request):
        return lambda: disconnected(request)

    @router.post(
        "/v1/tag",
        response_model=TagResponse,
        responses=errors(401, 408, 413, 415, 422, 503),
        openapi_extra={"requestBody": {"required": True, "content": BODIES}},
    )
    async def tag(request: Request) -> dict[str, Any]:
        """Tag one item: a multipart video upload (field `video`), or JSON with extracted modalities.

        Answers the top-k tags with scores and the branches that carried each, the text used
        (OCR/ASR read from an upload, each cut to a few thousand characters), and seconds per stage."""
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() == "application/json":
            return await tag_json(request)
        return await tag_upload(request, ctype)

    async def tag_json(request: Request) -> dict[str, Any]:
        t0 = time.perf_counter()
        req = parse(TagRequest, await read_json(request, config.max_json, config.body_grace_s, config.min_body_rate))
        item, warnings = svc.item_from_request(req)
        with svc.predict_pool.reserve() as slot:
            ((tags, decided),), waited = await slot.run(
                svc.explain, [item], req.top_k, deadline=config.predict_timeout_s, gone=gone(request)
            )
        total = time.perf_counter() - t0
        result = TagResult(
            id=item.id,
            tags=tags,
            text=item.text,
            extra=item.extra,
            modalities=modalities_of(item),
            timings={"queue": waited, "predict": total - waited, "total": total},
            warnings=warnings,
            **decided,
        )
        return result.to_json(config.echo_chars)

    async def tag_upload(request: Request, ctype: str) -> dict[str, Any]:
        if svc.encoders is None:
            raise ApiError(422, "this model was trained without extraction encoders: send extracted modalities as JSON")
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        # A full server refuses before reading; the body is then received without holding an
        # extraction slot, so clients trickling their bodies (408 after the grace time) block no one.
        svc.extract_pool.refuse_if_full()
        with svc.receive_pool.reserve():
            upload = await receive_upload(
                paced(request.stream(), config.body_grace_s, config.min_body_rate),
                ctype,
                int(length) if length and length.isdigit() else None,
                svc.tmp_dir,
                config.max_upload,
            )
        try:
            f = upload.fields
            top_k = form_int(f, "top_k", 10, 1, MAX_TOP_K)
            thumbs = f.get("thumbnails", "").lower() in ("1", "true", "on", "yes")
            item_id = clean_id(f.get("id") or upload.filename, "upload")
            language = form_language(f.get("language"))
            t_upload = time.perf_counter() - t0
            with svc.extract_pool.reserve() as slot:
                try:
                    read, waited = await slot.run(
                        svc.extract, upload.path, item_id, language, thumbs, gone=gone(request)
                    )
                except AdtagError as exc:
                    reason = getattr(exc, "reason", None) or str(exc).replace(str(upload.path), "video")
                    raise ApiError(422, f"video: {reason}") from None
        finally:
            upload.delete()
        t1 = time.perf_counter()
        with svc.predict_pool.reserve() as pslot:
            ((tags, decided),), _ = await pslot.run(svc.explain, [read.item], top_k, deadline=config.predict_timeout_s)
        read.item.video = None  # the temporary file is gone; never echo its path
        result = TagResult(
            id=item_id,
            tags=tags,
            text=read.item.text,
            extra=read.item.extra,
            modalities=modalities_of(read.item),
            warnings=read.warnings,
            thumbnails=read.thumbnails,
            **decided,
        )
        result.timings = {"upload": t_upload, "queue": waited, **read.timings}
        result.timings["predict"] = time.perf_counter() - t1
        result.timings["total"] = time.perf_counter() - t0
        return result.to_json(config.echo_chars)

    @router.post(
        "/v1/tag/batch",
        response_model=BatchResponse,
        responses=errors(401, 408, 413, 422, 503),
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("BatchRequest")}}}
        },
    )
    async def tag_batch(request: Request) -> dict[str, Any]:
        """Tag several items (JSON modalities) in one call; answers in the same order."""
        t0 = time.perf_counter()
        req = parse(BatchRequest, await read_json(request, config.max_json, config.body_grace_s, config.min_body_rate))
        checked = [svc.item_from_request(r, f"body.items.{i}") for i, r in enumerate(req.items)]
        items = [it for it, _ in checked]
        with svc.predict_pool.reserve() as slot:
            rows, waited = await slot.run(
                svc.explain, items, [r.top_k for r in req.items], deadline=config.predict_timeout_s, gone=gone(request)
            )
        total = time.perf_counter() - t0
        results = [
            TagResult(
                id=it.id, tags=tags, text=it.text, extra=it.extra, modalities=modalities_of(it), warnings=w, **decided
            )
            for (it, w), (tags, decided) in zip(checked, rows, strict=True)
        ]
        return {
            "results": [r.to_json(config.echo_chars) for r in results],
            "timings": {"queue": waited, "predict": total - waited, "total": total},
        }

    return router
