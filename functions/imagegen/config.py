"""Service configuration, read once from environment variables.

Every setting has a documented default that makes the local emulator stack
work out of the box; production overrides them from Terraform. The README's
environment table is the reference for operators.

Gemini backend precedence (first match wins):
1. ``GOOGLE_GENAI_USE_VERTEXAI=true``: Vertex AI with Application Default
   Credentials, project ``GOOGLE_CLOUD_PROJECT``, location
   ``GOOGLE_CLOUD_LOCATION``.
2. ``GOOGLE_API_KEY`` (the seed's name), then ``GEMINI_API_KEY``: the Gemini
   Developer API.
3. ``GEMINI_STANDIN_URL``: the local Gemini stand-in (no key needed).
4. Nothing: image generation is not configured; the API answers 500
   "Clé API Google non configurée" as the seed's error table says.
"""

from __future__ import annotations

import enum
import functools
import os
from dataclasses import dataclass


class GeminiBackend(str, enum.Enum):
    """Where image generation requests go."""

    VERTEX = "vertex-ai"
    API_KEY = "gemini-api"
    STANDIN = "stand-in"
    NONE = "none"


_TRUE = {"1", "true", "yes", "on"}


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in _TRUE


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Immutable view of the environment; see ``load_settings``."""

    environment: str
    """``ENVIRONMENT``: ``development`` (default) or ``production``."""
    project: str
    """``GOOGLE_CLOUD_PROJECT`` (default ``imagegen-local``)."""

    gemini_api_key: str
    """``GOOGLE_API_KEY`` or else ``GEMINI_API_KEY`` (default empty)."""
    use_vertex: bool
    """``GOOGLE_GENAI_USE_VERTEXAI`` (default false)."""
    vertex_location: str
    """``GOOGLE_CLOUD_LOCATION`` (default ``global``)."""
    gemini_model: str
    """``GEMINI_MODEL`` (default ``gemini-3.1-flash-image``): the model of jobs that name none."""
    gemini_models: str
    """``GEMINI_MODELS``: ``alias=model,...`` a request's ``model`` may name (default flash and pro)."""
    gemini_model_fallbacks: str
    """``GEMINI_MODEL_FALLBACKS``: models tried in order when one is not found or shut down."""
    gemini_standin_url: str
    """``GEMINI_STANDIN_URL``: used only when no key and no Vertex."""
    gemini_timeout_seconds: int
    """``GEMINI_TIMEOUT_SECONDS`` of one HTTP call to the model, each retry its own (default 90)."""
    gemini_retry_attempts: int
    """``GEMINI_RETRY_ATTEMPTS`` for 408/429/5xx, first call included (default 5)."""
    gemini_retry_initial_delay: float
    """``GEMINI_RETRY_INITIAL_DELAY_MS`` before the first retry (default 1000 ms)."""

    jobs_collection: str
    """``JOBS_COLLECTION`` (default ``image_jobs``)."""
    job_lease_seconds: int
    """``JOB_LEASE_SECONDS``: one attempt's hold on a job, never extended (default 570).

    Longer than the worker's timeout (540 s), shorter than that plus the jobs
    queue's first backoff (60 s): a timed-out attempt's lease has expired when
    the queue's next attempt comes (``tests/infra/test_time_budget.py``).
    """
    worker_max_attempts: int
    """``WORKER_MAX_ATTEMPTS``: the queue's max attempts; the last one fails the job (default 10)."""
    images_bucket: str
    """``IMAGES_BUCKET`` (default ``imagegen-local-images``)."""
    image_url_mode: str
    """``IMAGE_URL_MODE``: ``api`` (served by the API, default), ``public`` or ``signed``."""
    signed_url_ttl_seconds: int
    """``SIGNED_URL_TTL_SECONDS`` for V4 signed URLs (default 3600)."""
    public_base_url: str
    """``PUBLIC_BASE_URL`` of the API, for result URLs (default ``http://localhost:9006``)."""

    tasks_location: str
    """``TASKS_LOCATION`` of the queues (default ``us-central1``)."""
    tasks_queue: str
    """``TASKS_QUEUE`` for generation jobs (default ``image-jobs``)."""
    worker_url: str
    """``WORKER_URL``: target of generation tasks (default ``http://127.0.0.1:9007/``)."""
    sweeper_url: str
    """``SWEEPER_URL``: the sweeper function's URL, audience of Cloud Scheduler's OIDC token (default ``http://127.0.0.1:9014/``)."""
    sweeper_queue_after_seconds: int
    """``SWEEPER_QUEUE_AFTER_SECONDS``: age of a PENDING job left unqueued before the sweeper queues it (default 60)."""
    sweeper_quiet_after_seconds: int
    """``SWEEPER_QUIET_AFTER_SECONDS``: silence of an unfinished job before the sweeper re-queues or fails it (default 1800).

    Longer than the longest gap between two claims while the queue still
    retries (lease + max backoff, ``tests/infra/test_time_budget.py``).
    """
    tasks_service_account: str
    """``TASKS_SERVICE_ACCOUNT``: identity of the OIDC tokens Cloud Tasks sends (the local stack sets one)."""

    input_image_max_bytes: int
    """``INPUT_IMAGE_MAX_BYTES`` downloaded from ``input_image_url`` (default 20 MB)."""
    input_image_buckets: str
    """``INPUT_IMAGE_BUCKETS``: comma-separated buckets ``gs://`` reference images may come from, beside ``IMAGES_BUCKET``."""
    allow_private_image_urls: bool
    """``ALLOW_PRIVATE_IMAGE_URLS``: test-only, lets input images come from loopback (default false)."""
    max_request_bytes: int
    """``MAX_REQUEST_BYTES`` of a request body (default 64 KiB)."""
    cors_allowed_origins: str
    """``CORS_ALLOWED_ORIGINS``: ``*`` (default) or a comma-separated list of origins."""

    webhook_url: str
    """``WEBHOOK_URL``: global webhook receiver (default empty: none)."""
    webhook_secret: str
    """``WEBHOOK_SECRET`` sent as ``X-Webhook-Secret`` in production and used to sign."""
    webhook_enabled: bool
    """``WEBHOOK_ENABLED`` (default false, as the seed)."""
    webhook_tasks_queue: str
    """``WEBHOOK_TASKS_QUEUE``: one task per webhook delivery (default ``webhook-deliveries``)."""
    webhook_delivery_url: str
    """``WEBHOOK_DELIVERY_URL``: target of delivery tasks (default ``http://127.0.0.1:9009/``)."""
    webhook_timeout_seconds: int
    """``WEBHOOK_TIMEOUT_SECONDS`` for one delivery attempt (default 10)."""
    webhook_secret_grace_seconds: int
    """``WEBHOOK_SECRET_GRACE_SECONDS``: an owner's rotated-out secret still signs this long (default 24 h)."""

    auth_required: bool
    """``AUTH_REQUIRED``: refuse requests that send no credentials (401).

    An explicit value wins; unset, it is true when ``ENVIRONMENT=production``
    and false otherwise. Without it, such requests run as the ``anonymous``
    owner, but credentials that are sent are still verified (a bad one is 401).
    """
    firebase_auth_enabled: bool
    """``FIREBASE_AUTH_ENABLED``: accept Firebase Auth ID tokens as ``Bearer`` (default false)."""
    firebase_project_id: str
    """``FIREBASE_PROJECT_ID``: audience of the ID tokens (default ``GOOGLE_CLOUD_PROJECT``)."""
    firebase_certs_url: str
    """``FIREBASE_CERTS_URL``: test-only, where token certificates come from (default empty: Google's)."""
    oidc_certs_url: str
    """``OIDC_CERTS_URL``: local only; keys of the OIDC tokens (default Google's; the stack: its emulator's)."""
    api_keys_collection: str
    """``API_KEYS_COLLECTION`` of hashed API keys (default ``api_keys``)."""
    api_key_hashes: str
    """``API_KEY_HASHES``: comma-separated ``owner:sha256hex`` keys, checked before Firestore."""
    rate_limit_per_minute: int
    """``RATE_LIMIT_PER_MINUTE``: jobs one owner (all its keys together) may create per minute (default 60; 0 disables)."""
    sse_max_seconds: int
    """``SSE_MAX_SECONDS``: an event stream is closed after this long (default 300)."""
    sse_heartbeat_seconds: int
    """``SSE_HEARTBEAT_SECONDS`` of silence before a ``: keepalive`` comment (default 15)."""

    @property
    def gemini_backend(self) -> GeminiBackend:
        if self.use_vertex:
            return GeminiBackend.VERTEX
        if self.gemini_api_key:
            return GeminiBackend.API_KEY
        if self.gemini_standin_url:
            return GeminiBackend.STANDIN
        return GeminiBackend.NONE

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def tasks_emulator_host(self) -> str:
        """``CLOUD_TASKS_EMULATOR_HOST`` (``host:port`` of the emulator's REST front), set only locally."""
        return _env("CLOUD_TASKS_EMULATOR_HOST")

    @property
    def firestore_emulator_host(self) -> str:
        """``FIRESTORE_EMULATOR_HOST`` (``host:port``), set only locally."""
        return _env("FIRESTORE_EMULATOR_HOST")

    @property
    def storage_emulator_host(self) -> str:
        """``STORAGE_EMULATOR_HOST`` (``http://host:port``), set only locally."""
        return _env("STORAGE_EMULATOR_HOST")


@functools.cache
def load_settings() -> Settings:
    """Read the environment once per process (cleared by tests that change it)."""
    return Settings(
        environment=_env("ENVIRONMENT", "development"),
        project=_env("GOOGLE_CLOUD_PROJECT", "imagegen-local"),
        gemini_api_key=_env("GOOGLE_API_KEY") or _env("GEMINI_API_KEY"),
        use_vertex=_env_bool("GOOGLE_GENAI_USE_VERTEXAI", False),
        vertex_location=_env("GOOGLE_CLOUD_LOCATION", "global"),
        gemini_model=_env("GEMINI_MODEL", "gemini-3.1-flash-image"),
        gemini_models=_env("GEMINI_MODELS", "flash=gemini-3.1-flash-image,pro=gemini-3-pro-image"),
        gemini_model_fallbacks=_env("GEMINI_MODEL_FALLBACKS"),
        gemini_standin_url=_env("GEMINI_STANDIN_URL"),
        gemini_timeout_seconds=_env_int("GEMINI_TIMEOUT_SECONDS", 90),
        gemini_retry_attempts=_env_int("GEMINI_RETRY_ATTEMPTS", 5),
        gemini_retry_initial_delay=_env_int("GEMINI_RETRY_INITIAL_DELAY_MS", 1000) / 1000,
        jobs_collection=_env("JOBS_COLLECTION", "image_jobs"),
        job_lease_seconds=_env_int("JOB_LEASE_SECONDS", 570),
        worker_max_attempts=_env_int("WORKER_MAX_ATTEMPTS", 10),
        images_bucket=_env("IMAGES_BUCKET", "imagegen-local-images"),
        image_url_mode=_env("IMAGE_URL_MODE", "api"),
        signed_url_ttl_seconds=_env_int("SIGNED_URL_TTL_SECONDS", 3600),
        public_base_url=_env("PUBLIC_BASE_URL", "http://localhost:9006").rstrip("/"),
        tasks_location=_env("TASKS_LOCATION", "us-central1"),
        tasks_queue=_env("TASKS_QUEUE", "image-jobs"),
        worker_url=_env("WORKER_URL", "http://127.0.0.1:9007/"),
        sweeper_url=_env("SWEEPER_URL", "http://127.0.0.1:9014/"),
        sweeper_queue_after_seconds=_env_int("SWEEPER_QUEUE_AFTER_SECONDS", 60),
        sweeper_quiet_after_seconds=_env_int("SWEEPER_QUIET_AFTER_SECONDS", 1800),
        tasks_service_account=_env("TASKS_SERVICE_ACCOUNT"),
        input_image_max_bytes=_env_int("INPUT_IMAGE_MAX_BYTES", 20 * 1024 * 1024),
        input_image_buckets=_env("INPUT_IMAGE_BUCKETS"),
        allow_private_image_urls=_env_bool("ALLOW_PRIVATE_IMAGE_URLS", False),
        max_request_bytes=_env_int("MAX_REQUEST_BYTES", 64 * 1024),
        cors_allowed_origins=_env("CORS_ALLOWED_ORIGINS", "*"),
        webhook_url=_env("WEBHOOK_URL"),
        webhook_secret=_env("WEBHOOK_SECRET"),
        webhook_enabled=_env_bool("WEBHOOK_ENABLED", False),
        webhook_tasks_queue=_env("WEBHOOK_TASKS_QUEUE", "webhook-deliveries"),
        webhook_delivery_url=_env("WEBHOOK_DELIVERY_URL", "http://127.0.0.1:9009/"),
        webhook_timeout_seconds=_env_int("WEBHOOK_TIMEOUT_SECONDS", 10),
        webhook_secret_grace_seconds=_env_int("WEBHOOK_SECRET_GRACE_SECONDS", 24 * 3600),
        auth_required=_env_bool("AUTH_REQUIRED", _env("ENVIRONMENT", "development") == "production"),
        firebase_auth_enabled=_env_bool("FIREBASE_AUTH_ENABLED", False),
        firebase_project_id=_env("FIREBASE_PROJECT_ID", _env("GOOGLE_CLOUD_PROJECT", "imagegen-local")),
        firebase_certs_url=_env("FIREBASE_CERTS_URL"),
        oidc_certs_url=_env("OIDC_CERTS_URL"),
        api_keys_collection=_env("API_KEYS_COLLECTION", "api_keys"),
        api_key_hashes=_env("API_KEY_HASHES"),
        rate_limit_per_minute=_env_int("RATE_LIMIT_PER_MINUTE", 60),
        sse_max_seconds=_env_int("SSE_MAX_SECONDS", 300),
        sse_heartbeat_seconds=_env_int("SSE_HEARTBEAT_SECONDS", 15),
    )
