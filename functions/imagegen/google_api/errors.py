"""Typed errors of Google REST APIs, from the JSON error body every Google API returns.

``{"error": {"code": 409, "status": "ALREADY_EXISTS", "message": "..."}}``:
the class follows the canonical ``status`` (the HTTP code alone is ambiguous:
409 is both ``ABORTED`` and ``ALREADY_EXISTS``). Cloud Storage's JSON API
sends no ``status`` (``{"error": {"code": 412, "message": "...", "errors":
[...]}}``): the HTTP code decides, and its 412 (an ``ifGenerationMatch`` or
other precondition not met) is ``FailedPrecondition``, the canonical code of
a request whose precondition does not hold (Firestore's failed ``updateTime``
precondition is the same class).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Google API (or its emulator) answered with an error."""

    status = "UNKNOWN"

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.http_status} {self.status}: {self.message}"


class InvalidArgument(ApiError):
    status = "INVALID_ARGUMENT"


class FailedPrecondition(ApiError):
    status = "FAILED_PRECONDITION"


class Unauthenticated(ApiError):
    status = "UNAUTHENTICATED"


class PermissionDenied(ApiError):
    status = "PERMISSION_DENIED"


class NotFound(ApiError):
    status = "NOT_FOUND"


class AlreadyExists(ApiError):
    status = "ALREADY_EXISTS"


class Aborted(ApiError):
    """A transaction lost to a concurrent write: run it again."""

    status = "ABORTED"


class ResourceExhausted(ApiError):
    status = "RESOURCE_EXHAUSTED"


class Internal(ApiError):
    status = "INTERNAL"


class Unavailable(ApiError):
    status = "UNAVAILABLE"


class DeadlineExceeded(ApiError):
    status = "DEADLINE_EXCEEDED"


_BY_STATUS: dict[str, type[ApiError]] = {
    cls.status: cls
    for cls in (
        InvalidArgument, FailedPrecondition, Unauthenticated, PermissionDenied, NotFound, AlreadyExists,
        Aborted, ResourceExhausted, Internal, Unavailable, DeadlineExceeded,
    )
}
_BY_HTTP = {400: InvalidArgument, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound, 409: Aborted,
            412: FailedPrecondition, 429: ResourceExhausted, 500: Internal, 503: Unavailable, 504: DeadlineExceeded}

TRANSIENT = (Unavailable, DeadlineExceeded, Internal, ResourceExhausted)
"""Worth the same request again after a pause (Google's retry guidance for idempotent calls)."""


def from_response(http_status: int, body: Any) -> ApiError:
    """The error a response carries; its JSON body may be missing or not Google's shape."""
    if isinstance(body, list) and body:  # streamed methods (runQuery) answer a list
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    status = str(error.get("status") or "")
    cls = _BY_STATUS.get(status) or _BY_HTTP.get(http_status, ApiError)
    return cls(str(error.get("message") or f"HTTP {http_status}"), http_status=http_status)
