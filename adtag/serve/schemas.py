"""Request and response bodies of the HTTP API (pydantic models; they also make the OpenAPI spec)."""

from __future__ import annotations

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
    id: str
    tags: list[TagScore]
    text: dict[str, str] = Field(description="text modalities used: for an upload, the OCR/ASR text read")
    timings: dict[str, float] = Field(description="seconds per stage (upload, queue, extraction stages, predict)")
    warnings: list[str] = Field(default_factory=list, description="modalities that could not be read")
    thumbnails: list[str] = Field(default_factory=list, description="JPEG data URIs, when asked for")


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
    status: str
    model_tags: int
    busy: dict[str, int]


class ErrorBody(BaseModel):
    detail: str


class UploadForm(BaseModel):
    """multipart/form-data fields of a video upload (documentation only: the body is streamed)."""

    video: bytes = Field(json_schema_extra={"format": "binary"}, description="the video file")
    id: str | None = Field(None, description="echoed back; default: the file name")
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    language: str | None = Field(None, description="force the ASR language, e.g. zh")
    thumbnails: bool = Field(False, description="return a strip of JPEG thumbnails")
