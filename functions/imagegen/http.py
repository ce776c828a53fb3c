"""Small helpers shared by the HTTP functions (JSON responses, request context)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import flask

from imagegen.logs import TRACE_HEADER, log_context

JSON_TYPE = "application/json; charset=utf-8"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    """Serialize ``body`` (pydantic model or plain data) as a JSON response."""
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json", exclude_none=True)
    response = flask.Response(
        json.dumps(body, ensure_ascii=False), status=status, content_type=JSON_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(
    status: int,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> flask.Response:
    """The API's error shape: ``{"error": message, "details": [...]}``."""
    return json_response({"error": message, "details": details or []}, status, headers)


def ascii_int(raw: str | None, max_digits: int = 18) -> int | None:
    """``raw`` as a non-negative integer if it is 1..max_digits ASCII digits, else None.

    Stricter than ``str.isdigit()``/``int()``, which also accept "²", "١" or " 7".
    """
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


# (module, class) of the errors that mean a dependency failed. Only the modules
# already imported are looked at: an exception of a module never imported cannot
# exist, and importing grpc or google.api_core just to check would cost a cold start.
_INFRASTRUCTURE_ERRORS = (
    ("google.api_core.exceptions", "GoogleAPIError"),
    ("grpc", "RpcError"),
    ("google.auth.exceptions", "TransportError"),
    ("httpx2", "TransportError"),
    ("imagegen.google_api.errors", "ApiError"),
)


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for a failure of something the service depends on (answer 503, retry later).

    Google API errors (``RetryError`` included, and the REST calls'
    ``google_api.errors.ApiError``), gRPC and transport errors, and
    ``OSError``: refused connections, timeouts, and the errors of the
    ``requests`` transport google-cloud-storage signs URLs over
    (``RequestException`` is an ``OSError``). Anything else is a bug: 500.
    """
    if isinstance(exc, OSError):
        return True
    for module_name, class_name in _INFRASTRUCTURE_ERRORS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


@contextlib.contextmanager
def request_context(request: flask.Request, job_id: str = "") -> Iterator[None]:
    """Log every line of this request with its Cloud Trace id (and job id)."""
    with log_context(trace=request.headers.get(TRACE_HEADER, ""), job_id=job_id):
        yield
