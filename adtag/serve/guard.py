"""The bearer-token guard: pure ASGI, so a call without the token is refused before its body is read."""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

DOC_PATHS = ("/docs", "/redoc", "/openapi.json", "/static/docs/")


class TokenGuard:
    """Guards /v1/ (and the API docs when ``private_docs``); /healthz and the upload page stay open."""

    def __init__(self, app: ASGIApp, token: str | None, private_docs: bool = False) -> None:
        self.app, self.token, self.private_docs = app, token, private_docs

    def _guarded(self, path: str) -> bool:
        return path.startswith("/v1/") or (self.private_docs and path.startswith(DOC_PATHS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token and scope["type"] == "http" and self._guarded(scope["path"]):
            headers = dict(scope["headers"])
            given = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                why = "missing bearer token" if not given else "wrong bearer token"
                response = JSONResponse({"detail": f"Authorization: {why}"}, 401, {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
