"""GET /healthz (load and saturation, no token) and GET /v1/model (what the model knows)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from adtag.serve.schemas import Health, ModelInfo, errors
from adtag.serve.service import TaggingService


def info_router(svc: TaggingService) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness and load; needs no token. `status` is "saturated" while a pool is full (new
        requests of that kind get 503) or a prediction runs past its deadline."""
        return svc.health()

    @router.get("/v1/model", response_model=ModelInfo, responses=errors(401), tags=["model"])
    async def model() -> dict[str, Any]:
        """The model's tags, modalities, branches, extraction encoders and training metrics."""
        return svc.model_info()

    return router
