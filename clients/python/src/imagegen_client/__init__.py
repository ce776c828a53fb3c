"""Python client of the image generation API.

    from imagegen_client import ImageGenClient

    with ImageGenClient() as client:  # $IMAGEGEN_URL, $IMAGEGEN_API_KEY
        result = client.generate("Un phare sous la pluie", num_images=2, size="1792x1024")
        paths = client.download(result, "out")
"""

from imagegen_client.async_client import AsyncImageGenClient
from imagegen_client.client import ImageGenClient
from imagegen_client.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConflictError,
    ImageGenError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    WebhookVerificationError,
)
from imagegen_client.models import (
    CreateJobResponse,
    GenerateParams,
    HealthResponse,
    ImageInfo,
    JobEvent,
    JobListResponse,
    JobStatus,
    JobTimingsInfo,
    MissingImage,
    ModelFallbacks,
    ResultMetadata,
    ResultResponse,
    SafetyInfo,
    SafetyRatingInfo,
    StatusResponse,
    UsageDay,
    UsageInfo,
    UsageResponse,
    UsageTotals,
    WebhookSecretResponse,
)
from imagegen_client.webhooks import verify_webhook

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncImageGenClient",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConflictError",
    "CreateJobResponse",
    "GenerateParams",
    "HealthResponse",
    "ImageGenClient",
    "ImageGenError",
    "ImageInfo",
    "JobEvent",
    "JobFailedError",
    "JobListResponse",
    "JobStatus",
    "JobTimeoutError",
    "JobTimingsInfo",
    "MissingImage",
    "ModelFallbacks",
    "NotFoundError",
    "RateLimitError",
    "ResultMetadata",
    "ResultResponse",
    "SafetyInfo",
    "SafetyRatingInfo",
    "ServerError",
    "StatusResponse",
    "UsageDay",
    "UsageInfo",
    "UsageResponse",
    "UsageTotals",
    "WebhookSecretResponse",
    "WebhookVerificationError",
    "verify_webhook",
]
