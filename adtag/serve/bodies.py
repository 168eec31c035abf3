"""Reading request bodies within bounds: size, time (a minimum rate), JSON depth, form fields."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from adtag.errors import AdtagError
from adtag.serve.errors import ApiError


async def paced(stream: AsyncIterator[bytes], grace_s: float, min_rate: float) -> AsyncIterator[bytes]:
    """``stream``'s chunks, or 408 once the body falls behind ``min_rate`` bytes/s after ``grace_s``.

    A client trickling its body (a byte every few seconds) would otherwise hold a worker slot, or a
    connection, for as long as it likes."""
    t0 = time.monotonic()
    got = 0
    chunks = stream.__aiter__()
    while True:
        left = t0 + grace_s + got / min_rate - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(chunks.__anext__(), left)
        except StopAsyncIteration:
            return
        except TimeoutError:
            took = time.monotonic() - t0
            raise ApiError(
                408,
                f"request body too slow: {got} bytes in {took:.1f} s; after the first {grace_s:g} s a body must "
                f"arrive at {min_rate / 1024:g} KiB/s or more",
                {"Connection": "close"},
            ) from None
        got += len(chunk)
        yield chunk


async def read_json(request: Request, limit: int, grace_s: float, min_rate: float) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"JSON body of {length} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in paced(request.stream(), grace_s, min_rate):
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"JSON body is over the limit of {limit} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"body: not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise ApiError(422, "body: JSON nested too deeply (a request needs at most 5 levels)") from None


def validation_detail(exc: ValidationError | RequestValidationError, where: str = "body") -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = [str(x)[:80] for x in err.get("loc", ()) if x != "body"]
        parts.append(f"{'.'.join([where, *loc[:8]])}: {str(err.get('msg', 'invalid'))[:200]}")
    return "; ".join(parts) or "invalid request"


def parse(model: type[BaseModel], obj: Any) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise ApiError(422, validation_detail(exc)) from None
    except RecursionError:  # nesting below json's own limit can still exhaust the validator's
        raise ApiError(422, "body: JSON nested too deeply (a request needs at most 5 levels)") from None


def form_int(fields: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
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


def form_language(raw: str | None) -> str | None:
    from adtag.tagging import check_language

    try:
        return check_language(raw)
    except AdtagError as exc:
        raise ApiError(422, f"language: {exc}") from None


async def disconnected(request: Request) -> None:
    """Returns once the client has gone (to call after the body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
