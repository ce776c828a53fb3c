"""Exceptions: one base, ``ImageGenError``, and a subclass per kind of failure.

HTTP errors carry the API's answer: ``status_code``, ``message`` (its French
``error``) and ``details`` (one ``{field, message}`` per invalid field).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from imagegen_client.models import ResultResponse


class ImageGenError(Exception):
    """Anything this client raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        details: list[dict[str, str]] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.details = details or []
        self.response = response

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"


class BadRequestError(ImageGenError):
    """400 and the other 4xx without a class of their own (405, 413, 422...)."""


class AuthenticationError(ImageGenError):
    """401 or 403: missing, invalid or disabled credentials."""


class NotFoundError(ImageGenError):
    """404: no such job (or another owner's), image or route."""


class BudgetExceededError(ImageGenError):
    """402: the API key's monthly budget is spent (not retried: it comes back next month)."""


class ConflictError(ImageGenError):
    """409: for example cancelling a job that has already ended."""


class RateLimitError(ImageGenError):
    """429 still there after the retries; ``retry_after`` is the server's hint in seconds."""

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.response) if self.response is not None else None


class ServerError(ImageGenError):
    """5xx: the service failed or is unavailable (503 is retried first)."""


class APIConnectionError(ImageGenError):
    """The API could not be reached, or the connection broke (after the retries)."""


class APITimeoutError(APIConnectionError):
    """A request got no answer within its timeout."""


class JobTimeoutError(ImageGenError):
    """``wait``/``generate`` gave up: the job had not ended within ``timeout`` seconds."""


class JobFailedError(ImageGenError):
    """The job ended FAILED or CANCELLED: ``job`` is its result, ``errors`` its errors."""

    def __init__(self, job: ResultResponse) -> None:
        self.job = job
        self.errors = list(job.errors or [])
        super().__init__(self.errors[0] if self.errors else job.message)

    @property
    def status(self) -> str:
        return self.job.status.value


class WebhookVerificationError(ImageGenError):
    """A webhook whose signature, timestamp or headers do not verify."""


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _family(status: int) -> type[ImageGenError]:
    exact = {401: AuthenticationError, 402: BudgetExceededError, 403: AuthenticationError,
             404: NotFoundError, 409: ConflictError, 429: RateLimitError}
    if status in exact:
        return exact[status]
    return ServerError if status >= 500 else BadRequestError


def from_response(response: httpx.Response) -> ImageGenError:
    """The exception for an error answer, with the API's French message when it sent one."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        details = body.get("details")
        message, details = body["error"], details if isinstance(details, list) else []
    else:
        text = response.text.strip()[:200]
        message, details = f"HTTP {response.status_code}" + (f": {text}" if text else ""), []
    return _family(response.status_code)(
        message, status_code=response.status_code, details=details, response=response
    )
