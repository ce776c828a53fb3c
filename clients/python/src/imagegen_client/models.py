"""Typed request parameters and responses, mirroring the API's OpenAPI schemas.

Responses keep fields a newer server adds (``extra="allow"``). Request
parameters are a ``TypedDict`` for editors and type checkers only: the API
validates them and answers each bad field with its French message.
"""

from __future__ import annotations

import enum
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

Size = Literal["512x512", "1024x1024", "1792x1024"]
ImageFormat = Literal["PNG", "JPEG", "WEBP"]
Style = Literal["photorealistic", "artistic", "illustration", "3d-render"]
Quality = Literal["standard", "high", "ultra"]
WebhookEvent = Literal["completed", "failed", "progress", "cancelled"]


class JobStatus(str, enum.Enum):
    """A job's lifecycle; the last three are terminal."""

    PENDING = "PENDING"
    INITIALIZING = "INITIALIZING"
    GENERATING = "GENERATING"
    SAVING = "SAVING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class GenerateParams(TypedDict, total=False):
    """Optional fields of ``POST /api/images/generate`` (the prompt apart)."""

    input_image_url: str
    input_image_urls: list[str]  # http(s) or gs:// reference images, after input_image_url
    num_images: int
    size: Size
    format: ImageFormat
    style: Style
    quality: Quality
    model: str  # one of the server's GEMINI_MODELS (names or aliases)
    seed: int  # image n uses seed + n - 1: the same seed redraws the same images
    allow_partial: bool  # complete with the images not blocked, listed in missing_images
    timeout_seconds: int  # 1..900: not finished by then, the job fails with deadline_exceeded
    webhook_url: str
    webhook_events: list[WebhookEvent]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorResponse(_Response):
    error: str
    details: list[dict[str, str]] = Field(default_factory=list)


class CreateJobResponse(_Response):
    job_id: str
    status: JobStatus
    message: str


class StatusResponse(_Response):
    job_id: str
    status: JobStatus
    message: str
    progress: int
    created_at: str
    updated_at: str
    errors: list[str] | None = None
    error_code: str | None = None  # FAILED/CANCELLED: content_blocked, model_unavailable, ...


class JobListResponse(_Response):
    jobs: list[StatusResponse]
    next_cursor: str | None = None


class UsageInfo(_Response):
    """Tokens Gemini reported and their cost (USD, the server's pinned prices)."""

    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    images: int
    cost_usd: float


class ImageInfo(_Response):
    file_path: str
    url: str
    description: str
    format: ImageFormat
    size_bytes: int
    dimensions: str
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None  # of the bytes url serves
    thumbnail_url: str | None = None  # a 256-pixel WEBP
    usage: UsageInfo | None = None


class JobTimingsInfo(_Response):
    queued: float
    input_fetch: float
    model: float
    post_processing: float
    storage: float
    total: float


class ModelFallbacks(_Response):
    unavailable: list[str]  # models that answered "not found" / "shut down"
    used: str


class SafetyRatingInfo(_Response):
    category: str
    probability: str | None = None
    blocked: bool | None = None


class SafetyInfo(_Response):
    """What Gemini's safety filters said (a ``content_blocked`` failure)."""

    block_reason: str | None = None
    finish_reason: str | None = None
    ratings: list[SafetyRatingInfo] = Field(default_factory=list)


class MissingImage(_Response):
    """An image an ``allow_partial`` job completed without."""

    index: int
    error_code: str
    message: str
    safety: SafetyInfo | None = None


class ResultMetadata(_Response):
    model_name: str
    version: str
    generation_time_seconds: float
    input_tokens: int
    output_size_bytes: int
    timestamp: str
    timings: JobTimingsInfo | None = None
    usage: UsageInfo | None = None
    fallbacks: ModelFallbacks | None = None


class ResultResponse(_Response):
    job_id: str
    status: JobStatus
    message: str
    progress: int | None = None
    images: list[ImageInfo] | None = None
    metadata: ResultMetadata | None = None
    errors: list[str] | None = None
    error_code: str | None = None
    safety: SafetyInfo | None = None
    billed: bool | None = None  # FAILED/CANCELLED: False when no model call started
    missing_images: list[MissingImage] | None = None


class JobEvent(StatusResponse):
    """One update of a job (an event of the stream, or a long-poll answer).

    The status body; ``images`` and ``metadata`` too when it comes from the
    stream's COMPLETED event.
    """

    images: list[ImageInfo] | None = None
    metadata: ResultMetadata | None = None


class UsageTotals(UsageInfo):
    jobs: int


class UsageDay(UsageTotals):
    date: str


class UsageResponse(_Response):
    """``GET /api/usage``: the caller's completed jobs per day (UTC)."""

    from_date: str
    to_date: str
    days: list[UsageDay]
    total: UsageTotals


class WebhookSecretResponse(_Response):
    secret: str
    created_at: str
    rotated_at: str | None = None
    previous_secret_expires_at: str | None = None


class HealthResponse(_Response):
    status: Literal["healthy"]
    features: dict[str, bool]
    model: str
    gemini_backend: str
