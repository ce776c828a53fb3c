"""Calls to one Google REST API, or to its local emulator, over one shared httpx2 client.

Why not the official clients here: each of google-cloud-firestore and
google-cloud-tasks imports gRPC, api_core and its proto-plus types, about
200 ms of a cold start (the README's table), for a handful of JSON calls;
google-cloud-storage imports requests, api_core and google-resumable-media
(~160 ms) for an upload, a download, a list and a delete.
The REST surface is the same API (the same methods, errors and IAM
permissions); this module adds what the clients would: credentials, a
deadline, retries of idempotent calls on transient errors with exponential
backoff and jitter, and typed errors (``errors``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from imagegen.clients import shared
from imagegen.google_api import errors
from imagegen.google_api.auth import BearerToken

_RETRY_INITIAL = 0.1
_RETRY_MAX = 2.0
_RETRY_DEADLINE = 15.0
_CONNECT = 5.0
_MIN_ATTEMPT = 0.1
_TIMEOUT = httpx2.Timeout(20.0, connect=_CONNECT)


@shared
def http_client() -> httpx2.Client:
    """The one httpx2 client of an instance's Google calls: every REST API, certificates, token refreshes.

    (google-genai keeps its own: it builds its sync and async clients itself.)

    One client is one TLS setup (its CA bundle loads once, ~18 ms at a cold
    start) and one connection pool for all of them.
    """
    return httpx2.Client(timeout=_TIMEOUT, limits=httpx2.Limits(max_connections=64))


class RestApi:
    """``base_url`` (``https://firestore.googleapis.com/v1`` or an emulator's) with its auth.

    ``emulator_token``: the fixed bearer token an emulator takes (the
    Firestore emulator's ``owner`` bypasses security rules; ``""``: none, the
    Storage emulator's case), or None for Application Default Credentials
    with ``scopes``.
    """

    def __init__(self, base_url: str, *, scopes: tuple[str, ...], emulator_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = http_client()
        self._emulator_token = emulator_token
        self._token = None if emulator_token is not None else BearerToken(scopes, self._client)

    def _authorization(self) -> dict[str, str]:
        if self._token is not None:
            return {"Authorization": self._token.header()}
        return {"Authorization": f"Bearer {self._emulator_token}"} if self._emulator_token else {}

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer of ``method path``; raises like ``request``."""
        response = self.request(method, path, json=body, params=params, idempotent=idempotent)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise errors.from_response(response.status_code, None) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        """The successful response of ``method path`` as it came (media: Cloud Storage's objects).

        Raises ``errors.ApiError`` or ``httpx2.TransportError``. An idempotent
        call is sent again on transient errors (and on transport errors) until
        ``_RETRY_DEADLINE``; any other is sent once. ``timeout``: seconds for the
        whole call, retries included (each attempt gets what is left of it).
        """
        options = {"params": params, "json": json, "content": content, "headers": headers}
        deadline = time.monotonic() + (_RETRY_DEADLINE if timeout is None else timeout)
        delay = _RETRY_INITIAL
        while True:
            left = max(deadline - time.monotonic(), _MIN_ATTEMPT)  # a sleep can overshoot
            attempt = _TIMEOUT if timeout is None else httpx2.Timeout(left, connect=min(_CONNECT, left))
            try:
                return self._send(method, path, timeout=attempt, **options)
            except (*errors.TRANSIENT, httpx2.TransportError):
                if not idempotent or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, _RETRY_MAX)

    def _send(self, method: str, path: str, *, headers: Mapping[str, str] | None, **options: Any) -> httpx2.Response:
        response = self._client.request(
            method, self.base_url + path, headers={**(headers or {}), **self._authorization()}, **options
        )
        if response.is_success:
            return response
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        raise errors.from_response(response.status_code, body)
