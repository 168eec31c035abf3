"""Request and response bodies of the HTTP API (pydantic models; they also make the OpenAPI spec)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_TOP_K = 100
MAX_BATCH = 64


class TagRequest(BaseModel):
    """One item's already extracted modalities, named as in the model (see ``GET /v1/model``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field("item", min_length=1, max_length=200, description="echoed back in the answer")
    text: dict[str, str] = Field(default_factory=dict, description="text modalities, e.g. {'ocr': '...'}")
    features: dict[str, list[float] | list[list[float]]] = Field(
        default_factory=dict, description="vector (D,) or sequence (T, D) modalities as nested lists"
    )
    extra: dict[str, float] = Field(default_factory=dict, description="tabular extras, e.g. {'duration': 30}")
    scores: dict[str, dict[str, float] | list[float]] = Field(
        default_factory=dict,
        description="external models' per-tag probabilities: {tag: score} or a list in the model's tag order",
    )
    top_k: int = Field(10, ge=1, le=MAX_TOP_K, description="tags to return")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TagRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BranchShare(BaseModel):
    probability: float = Field(description="this branch's own probability for the tag")
    share: float = Field(description="its share of the stacker's decision for the tag (shares sum to 1)")


class TagScore(BaseModel):
    tag: str
    score: float
    branches: dict[str, BranchShare] = Field(
        description="the branches (modality/model) that carried the tag; empty for the neural fusions"
    )


class TagResponse(BaseModel):
    id: str = Field(description="the item's id, control characters removed")
    tags: list[TagScore]
    text: dict[str, str] = Field(
        description="text modalities used: for an upload, the OCR/ASR text read; each cut to 2,000 characters"
    )
    extra: dict[str, float] = Field(default_factory=dict, description="tabular extras (duration, size, ...)")
    modalities: list[str] = Field(default_factory=list, description="the modalities the item carried")
    timings: dict[str, float] = Field(description="seconds per stage (upload, queue, extraction stages, predict)")
    warnings: list[str] = Field(
        default_factory=list, description="modalities that could not be read, texts cut to the per-modality cap"
    )
    thumbnails: list[str] = Field(default_factory=list, description="JPEG data URIs, when asked for")
    decided: list[dict[str, Any]] | None = Field(
        default=None, description="decided tags {tag, score} (a model trained with --decide); null otherwise"
    )
    review: list[dict[str, Any]] | None = Field(
        default=None, description="tags whose calibrated score lies near their threshold: worth a human look"
    )


class BatchResponse(BaseModel):
    results: list[TagResponse]
    timings: dict[str, float]


class ModelInfo(BaseModel):
    tags: list[str]
    modalities: list[dict]
    branches: list[str]
    encoders: dict[str, str] | None = Field(description="encoders a video upload is extracted with; null: JSON only")
    metrics: dict
    adtag_version: str
    video_uploads: bool


class Health(BaseModel):
    status: str = Field(description='"ok", or "saturated" when a pool is full or a prediction overruns')
    model_tags: int
    busy: dict[str, int] = Field(description="requests holding a slot, per pool (running + queued)")
    capacity: dict[str, int] = Field(description="slots per pool; beyond them, 503")
    running_s: dict[str, float] = Field(description="seconds the oldest running task of each pool has run")
    saturated: list[str] = Field(description="the pools that are full or overrunning")


class ErrorBody(BaseModel):
    detail: str


class UploadForm(BaseModel):
    """multipart/form-data fields of a video upload (documentation only: the body is streamed)."""

    video: bytes = Field(json_schema_extra={"format": "binary"}, description="the video file")
    id: str | None = Field(None, description="echoed back; default: the file name")
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    language: str | None = Field(None, description="force the ASR language, e.g. zh")
    thumbnails: bool = Field(False, description="return a strip of JPEG thumbnails")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, each with the ErrorBody shape."""
    return {c: {"model": ErrorBody} for c in codes}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
