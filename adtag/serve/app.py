"""The FastAPI application: the routers, the token guard, error bodies and the OpenAPI spec."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from adtag import __version__
from adtag.serve.bodies import validation_detail
from adtag.serve.errors import ApiError
from adtag.serve.guard import TokenGuard
from adtag.serve.routes.info import info_router
from adtag.serve.routes.pages import page_router
from adtag.serve.routes.tag import tag_router
from adtag.serve.schemas import BatchRequest, TagRequest, UploadForm
from adtag.serve.service import ServeConfig, TaggingService

log = logging.getLogger("adtag.serve")
MAX_DETAIL = 2000  # characters of an error message: a client's huge field name is not echoed whole


def create_app(config: ServeConfig, service: TaggingService | None = None) -> FastAPI:
    """The app for ``config``; pass ``service`` to share one loaded model between apps (tests)."""
    svc = service or TaggingService(config)
    if service is not None and config is not service.config:
        svc = _with_config(service, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.get_running_loop().run_in_executor(None, svc.warm_up)
        yield
        if service is None:
            svc.close()

    app = FastAPI(
        title="adtag",
        version=__version__,
        description=(
            "Tag video ads with a taxonomy: upload a video, or send already extracted modalities. "
            "With a token, every /v1/ call needs `Authorization: Bearer <token>`; /healthz, the upload "
            "page and these docs stay open unless the server runs with --private-docs."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    add_error_handlers(app)
    for router in (info_router(svc), tag_router(svc), page_router(svc)):
        app.include_router(router)
    app.openapi = lambda: openapi(app, config)  # type: ignore[method-assign]
    app.add_middleware(TokenGuard, token=config.token, private_docs=config.private_docs)
    return app


def _with_config(service: TaggingService, config: ServeConfig) -> TaggingService:
    """A view of a loaded service under other limits (tests share one model between apps)."""
    view = object.__new__(TaggingService)
    view.__dict__.update(service.__dict__)
    view.config = config
    return view


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail[:MAX_DETAIL]}, exc.status, exc.headers)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": "body: nested too deeply"}, 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug on one request must not take the server down, nor leak a traceback to the client.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, 500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc, "request")[:MAX_DETAIL]}, 422)


def openapi(app: FastAPI, config: ServeConfig) -> dict[str, Any]:
    """FastAPI's spec plus the request bodies the routes read by hand, and the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi
    from pydantic.json_schema import models_json_schema

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
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
