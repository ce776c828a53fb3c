"""Credentials for Google REST calls: Application Default Credentials, refreshed over httpx2.

google-auth refreshes tokens through a transport adapter; its own adapters
use requests, urllib3 or aiohttp, a second HTTP stack to import at cold
start. ``HttpxRequest`` is that adapter on the httpx2 client the calls share
(``google.auth.transport.Request`` is the documented interface for it).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx2
from google.auth import exceptions, transport


class _Response(transport.Response):
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Any:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpxRequest(transport.Request):
    """google-auth's transport interface on an httpx2 client (token refresh, certificate fetches)."""

    def __init__(self, client: httpx2.Client) -> None:
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        **_kwargs: Any,
    ) -> transport.Response:
        try:
            response = self._client.request(method, url, content=body, headers=headers, timeout=timeout or 30)
        except httpx2.HTTPError as exc:
            raise exceptions.TransportError(exc) from exc
        return _Response(response)


class BearerToken:
    """An ``Authorization`` header value from ADC, refreshed when it is about to expire."""

    def __init__(self, scopes: tuple[str, ...], client: httpx2.Client) -> None:
        self._scopes = scopes
        self._request = HttpxRequest(client)
        self._lock = threading.Lock()
        self._credentials: Any = None

    def header(self) -> str:
        with self._lock:
            if self._credentials is None:
                import google.auth

                self._credentials, _project = google.auth.default(scopes=list(self._scopes))
            if not self._credentials.valid:
                self._credentials.refresh(self._request)
            return f"Bearer {self._credentials.token}"
