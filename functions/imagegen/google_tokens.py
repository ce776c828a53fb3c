"""Verify Google-signed JWTs (Firebase ID tokens, Cloud Tasks OIDC tokens) cheaply.

google-auth's ``verify_token`` downloads the signing certificates on every
call; the transport here keeps them for the ``max-age`` Google serves them
with, so an instance fetches them once per key rotation, not per request.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from imagegen.clients import shared

_MAX_AGE = re.compile(r"max-age=(\d+)")
CLOCK_SKEW_SECONDS = 10


def verify(token: str, *, audience: str, certs_url: str) -> dict[str, Any]:
    """The token's claims once its signature, expiry and audience check out; else ValueError."""
    from google.oauth2 import id_token

    return id_token.verify_token(  # type: ignore[return-value]  # a JSON object: a dict
        token,
        certs_transport(),  # type: ignore[arg-type]  # any google-auth transport: a callable
        audience=audience,
        certs_url=certs_url,
        clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
    )


class _CachedCerts:
    """A google-auth transport that keeps certificate responses for their ``max-age``.

    ``verify_token`` downloads the certificates on every call; Google serves
    them with a ``max-age`` of hours (keys rotate slowly), so an instance
    fetches them once per rotation instead of once per request.
    """

    def __init__(self) -> None:
        from imagegen.google_api.auth import HttpxRequest
        from imagegen.google_api.rest import http_client

        self._fetch = HttpxRequest(http_client())
        self._lock = threading.Lock()
        self._responses: dict[str, tuple[float, Any]] = {}

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        with self._lock:
            expires_at, response = self._responses.get(url, (0.0, None))
        if time.monotonic() < expires_at:
            return response
        response = self._fetch(url, method=method, **kwargs)
        max_age = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        if method == "GET" and response.status == 200 and max_age:
            with self._lock:
                self._responses[url] = (time.monotonic() + int(max_age.group(1)), response)
        return response


@shared
def certs_transport() -> _CachedCerts:
    return _CachedCerts()
