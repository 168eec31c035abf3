"""What a browser loads: the upload page, its static files, a CJK font subset, and the API docs.

Everything is served from files inside installed packages, so the pages work offline: Swagger UI
and ReDoc come from the ``fastapi-offline`` wheel, not from a CDN, and Chinese text is drawn with
a subset of the Noto Sans CJK font the report also embeds (see ``adtag.report.fonts``).
"""

from __future__ import annotations

import base64
import functools
import re
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from adtag.serve.bodies import read_json
from adtag.serve.errors import ApiError
from adtag.serve.pool import BoundedPool
from adtag.serve.service import TaggingService

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; font-src 'self' data:; "
    "object-src 'none'"
)
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
DOCS_STATIC = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
MAX_FONT_CHARS = 4000  # distinct CJK characters in one font subset


# ReDoc's sidebar draws its "powered by" logo from a CDN; point it at the packaged favicon instead.
OFFLINE = {"redoc.standalone.js": [(b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/static/docs/favicon.png")]}


@functools.lru_cache(maxsize=8)
def docs_file(name: str) -> bytes:
    try:
        body = resources.files("fastapi_offline").joinpath(f"static/{name}").read_bytes()
    except ModuleNotFoundError:
        raise ApiError(404, "the API docs need the fastapi-offline package (pip install fastapi-offline)") from None
    for old, new in OFFLINE.get(name, []):
        body = body.replace(old, new)
    return body


@functools.lru_cache(maxsize=32)
def cjk_font(chars: str) -> bytes | None:
    """An OpenType subset of the CJK font holding ``chars``; None without a CJK font on this machine."""
    from adtag.report.fonts import embedded_font_css

    css = embedded_font_css(chars)
    found = re.search(r"base64,([A-Za-z0-9+/=]+)", css)
    return base64.b64decode(found.group(1)) if found else None


def page_router(svc: TaggingService) -> APIRouter:
    config = svc.config
    router = APIRouter(include_in_schema=False)
    font_pool = BoundedPool("font", 1, 4)

    @router.get("/", response_class=HTMLResponse)
    async def page() -> Response:
        html = resources.files("adtag.serve").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, f"{name}: no such file")
        body = resources.files("adtag.serve").joinpath(f"static/{name}").read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @router.post("/v1/font")
    async def font(request: Request) -> Response:
        """A font subset for the CJK characters of ``{"text": ...}`` (the page's tags, OCR, ASR)."""
        body = await read_json(request, 256 * 1024, config.body_grace_s, config.min_body_rate)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise ApiError(422, 'body.text: expected {"text": "..."}')
        chars = "".join(sorted({c for c in text if ord(c) >= 0x2E80}))
        if not chars:
            raise ApiError(422, "body.text: no CJK characters")
        if len(chars) > MAX_FONT_CHARS:
            raise ApiError(422, f"body.text: {len(chars)} distinct CJK characters, at most {MAX_FONT_CHARS}")
        with font_pool.reserve() as slot:
            data, _ = await slot.run(cjk_font, chars, deadline=120)
        if data is None:
            raise ApiError(404, "no CJK font on this server (pip install noto-cjk-sans-otc)")
        return Response(data, media_type="font/otf", headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="adtag API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="adtag API",
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon.png",
            with_google_fonts=False,
        )

    @router.get("/static/docs/{name}")
    async def docs_static(name: str) -> Response:
        if name not in DOCS_STATIC:
            raise ApiError(404, f"{name}: no such file")
        return Response(docs_file(name), media_type=DOCS_STATIC[name], headers={"Cache-Control": "max-age=86400"})

    return router
