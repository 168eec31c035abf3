"""The FastAPI application: routes, the bearer-token guard, error bodies and the upload page."""

from __future__ import annotations

import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from adtag import __version__
from adtag.errors import AdtagError
from adtag.serve.errors import ApiError
from adtag.serve.schemas import (
    MAX_TOP_K,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    Health,
    ModelInfo,
    TagRequest,
    TagResponse,
    UploadForm,
)
from adtag.serve.service import ServeConfig, TaggingService
from adtag.serve.uploads import receive_upload

log = logging.getLogger("adtag.serve")
PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'"
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody} for c in codes}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class TokenGuard:
    """Pure ASGI: refuses /v1/ calls without the bearer token before any body is read."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token and scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = dict(scope["headers"])
            given = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                why = "missing bearer token" if not given else "wrong bearer token"
                response = JSONResponse({"detail": f"Authorization: {why}"}, 401, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _validation_detail(exc: ValidationError | RequestValidationError, where: str = "body") -> str:
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        parts.append(f"{'.'.join([where, *loc])}: {err.get('msg', 'invalid')}")
    return "; ".join(parts[:10]) or "invalid request"


async def _read_json(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"JSON body of {length} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"JSON body is over the limit of {limit} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"body: not valid JSON ({exc})") from None


def _parse(model: type[BaseModel], obj: Any) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, _validation_detail(exc)) from None


def _answer(item_id: str, rows: list[dict[str, Any]], text: dict[str, str], timings: dict[str, float], **more) -> dict:
    return {"id": item_id, "tags": rows, "text": text, "timings": {k: round(v, 6) for k, v in timings.items()}, **more}


def _form_int(fields: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"{name}: expected an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(422, f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _form_language(raw: str | None) -> str | None:
    if not raw:
        return None
    from adtag.encoders.asr import check_language

    try:
        return check_language(raw.strip())
    except AdtagError as exc:
        raise ApiError(422, f"language: {exc}") from None


def create_app(config: ServeConfig, service: TaggingService | None = None) -> FastAPI:
    """The app for ``config``; pass ``service`` to share one loaded model between apps (tests)."""
    svc = service or TaggingService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, svc.warm_up)
        yield
        if service is None:
            svc.close()

    app = FastAPI(
        title="adtag",
        version=__version__,
        description="Tag video ads with a taxonomy: upload a video, or send already extracted modalities.",
        lifespan=lifespan,
    )
    app.state.service = svc

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug on one request must not take the server down, nor leak a traceback to the client.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, 500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc, "request")}, 422)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness and load; needs no token."""
        busy = {"extract": svc.extract_pool.held, "predict": svc.predict_pool.held}
        return {"status": "ok", "model_tags": len(svc.tagger.vocab_.tags), "busy": busy}

    @app.get("/v1/model", response_model=ModelInfo, responses=_errors(401), tags=["model"])
    async def model() -> dict[str, Any]:
        """The model's tags, modalities, branches, extraction encoders and training metrics."""
        return svc.model_info()

    @app.post(
        "/v1/tag",
        response_model=TagResponse,
        responses=_errors(401, 413, 415, 422, 503),
        tags=["tag"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("TagRequest")},
                    "multipart/form-data": {"schema": _ref("UploadForm")},
                },
            }
        },
    )
    async def tag(request: Request) -> dict[str, Any]:
        """Tag one item: a multipart video upload (field `video`), or JSON with extracted modalities.

        Answers the top-k tags with scores and the branches that carried each, the text used
        (OCR/ASR read from an upload), and seconds per stage."""
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() == "application/json":
            return await _tag_json(request)
        return await _tag_upload(request, ctype)

    async def _tag_json(request: Request) -> dict[str, Any]:
        t0 = time.perf_counter()
        req = _parse(TagRequest, await _read_json(request, config.max_json))
        item = svc.item_from_request(req)
        with svc.predict_pool.reserve() as slot:
            (rows,), waited = await slot.run(svc.explain, [item], req.top_k)
        timings = {"queue": waited, "total": time.perf_counter() - t0}
        timings["predict"] = timings["total"] - waited
        return _answer(req.id, rows, item.text, timings)

    async def _tag_upload(request: Request, ctype: str) -> dict[str, Any]:
        if svc.encoders is None:
            raise ApiError(422, "this model was trained without extraction encoders: send extracted modalities as JSON")
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        with svc.extract_pool.reserve() as slot:  # before reading: a full server refuses at once
            upload = await receive_upload(
                request.stream(),
                ctype,
                int(length) if length and length.isdigit() else None,
                svc.tmp_dir,
                config.max_upload,
            )
            try:
                f = upload.fields
                top_k = _form_int(f, "top_k", 10, 1, MAX_TOP_K)
                thumbs = f.get("thumbnails", "").lower() in ("1", "true", "on", "yes")
                item_id = (f.get("id") or upload.filename).strip()[:200] or "upload"
                language = _form_language(f.get("language"))
                t_upload = time.perf_counter() - t0
                try:
                    result, waited = await slot.run(svc.extract, upload.path, item_id, language, thumbs)
                except AdtagError as exc:
                    reason = getattr(exc, "reason", None) or str(exc).replace(str(upload.path), "video")
                    raise ApiError(422, f"video: {reason}") from None
            finally:
                upload.delete()
        t1 = time.perf_counter()
        item = result["item"]
        with svc.predict_pool.reserve() as pslot:
            (rows,), _ = await pslot.run(svc.explain, [item], top_k)
        timings = {"upload": t_upload, "queue": waited, **result["timings"], "predict": time.perf_counter() - t1}
        timings["total"] = time.perf_counter() - t0
        more = {"warnings": result["warnings"], "thumbnails": result.get("thumbnails", [])}
        return _answer(item_id, rows, item.text, timings, **more)

    @app.post(
        "/v1/tag/batch",
        response_model=BatchResponse,
        responses=_errors(401, 413, 422, 503),
        tags=["tag"],
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BatchRequest")}}}
        },
    )
    async def tag_batch(request: Request) -> dict[str, Any]:
        """Tag several items (JSON modalities) in one call; answers in the same order."""
        t0 = time.perf_counter()
        req = _parse(BatchRequest, await _read_json(request, config.max_json))
        items = [svc.item_from_request(r, f"body.items.{i}") for i, r in enumerate(req.items)]
        with svc.predict_pool.reserve() as slot:
            rows, waited = await slot.run(svc.explain, items, [r.top_k for r in req.items])
        total = time.perf_counter() - t0
        results = [_answer(r.id, rw, it.text, {}) for r, rw, it in zip(req.items, rows, items, strict=True)]
        return {"results": results, "timings": {"queue": waited, "predict": total - waited, "total": total}}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> Response:
        html = resources.files("adtag.serve").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, f"{name}: no such file")
        body = resources.files("adtag.serve").joinpath(f"static/{name}").read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        from pydantic.json_schema import models_json_schema

        _, defs = models_json_schema(
            [(m, "validation") for m in (TagRequest, BatchRequest, UploadForm)],
            ref_template="#/components/schemas/{model}",
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        if config.token:
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, ops in schema["paths"].items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(TokenGuard, token=config.token)
    return app
