"""The client's logic as generators ("flows"), written once for both clients.

A flow yields effects (send this request, read the stream's next event,
close it, sleep, emit an update) and is sent their results back, or thrown
their exceptions. ``ImageGenClient`` performs the effects with
``httpx.Client``, ``AsyncImageGenClient`` with ``httpx.AsyncClient``: retries,
the event stream, the long-poll fallback and paging are the same code in both.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from imagegen_client import errors

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_BASE_URL = "http://localhost:9006"
VERSION = "0.1.0"
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call:
    """One HTTP request. ``url`` is absolute; API calls carry the credentials."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: httpx.Timeout | None = None  # None: the client's default
    stream: bool = False  # answer with the open response (an event stream)
    repeatable: bool = True  # safe to send again when the connection broke
    authenticated: bool = True


@dataclass(frozen=True)
class NextEvent:
    """The stream's next ``httpx_sse.ServerSentEvent``, or None once the server closed it."""

    stream: httpx.Response


@dataclass(frozen=True)
class Close:
    stream: httpx.Response


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit:
    """A value for the caller: an iterator yields it, ``on_progress`` receives it."""

    value: Any


Effect = Call | NextEvent | Close | Sleep | Emit
Flow = Generator[Effect, Any, T]


class Step:
    """Drives a flow: ``effect`` is the one it waits on; None once it returned (into ``outcome``)."""

    def __init__(self, flow: Flow[Any], outcome: list[Any] | None) -> None:
        self._flow = flow
        self._outcome = outcome if outcome is not None else []
        self.effect: Effect | None = None
        self.resume()

    def resume(self, value: Any = None, error: BaseException | None = None) -> None:
        """Hand the flow the current effect's result (or exception); move to its next effect."""
        try:
            self.effect = self._flow.throw(error) if error is not None else self._flow.send(value)
        except StopIteration as stop:
            self.effect = None
            self._outcome.append(stop.value)

    def close(self) -> None:
        self._flow.close()


@dataclass(frozen=True)
class Config:
    """What both clients share: where the API is, credentials, timeouts, retries."""

    base_url: str
    api_key: str | None
    timeout: httpx.Timeout
    max_retries: int
    max_retry_wait: float
    headers: dict[str, str]

    @classmethod
    def build(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        headers: dict[str, str] | None,
    ) -> Config:
        base = (base_url or os.environ.get("IMAGEGEN_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("IMAGEGEN_API_KEY") or None
        return cls(
            base_url=base,
            api_key=key,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            headers={"User-Agent": f"imagegen-client/{VERSION} httpx/{httpx.__version__}"}
            | (headers or {}),
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request_headers(self, call: Call) -> dict[str, str]:
        return self.headers | (self.auth_headers if call.authenticated else {}) | call.headers

    def call(self, method: str, path: str, *segments: str, **options: Any) -> Call:
        """A call to the API: ``path`` then each segment, percent-encoded (job ids)."""
        url = self.base_url + path + "".join("/" + quote(segment, safe="") for segment in segments)
        return Call(method, url, **options)

    def timeout_for(self, read: float) -> httpx.Timeout:
        """The default timeouts with a longer read (a long-poll, an event stream)."""
        return httpx.Timeout(self.timeout.connect, read=read, write=self.timeout.write, pool=self.timeout.pool)

    def backoff(self, attempt: int, hint: float | None) -> float:
        """The server's ``Retry-After`` when it gave one, else 0.5 s doubling (max 8 s), jittered."""
        if hint is not None:
            return hint
        return min(8.0, 0.5 * 2**attempt) * random.uniform(0.75, 1.25)


class ClientBase(Generic[H]):
    """What ``ImageGenClient`` and ``AsyncImageGenClient`` share: settings and the httpx client.

    ``base_url`` defaults to ``$IMAGEGEN_URL``, else ``http://localhost:9006``;
    ``api_key`` (an ``igk_...`` key or a Firebase ID token) to
    ``$IMAGEGEN_API_KEY``. ``timeout`` bounds each request (seconds; a
    long-poll or a stream waits longer, as their protocol says); 429 and 503
    answers and broken connections are retried ``max_retries`` times,
    honouring ``Retry-After`` up to ``max_retry_wait`` seconds. Pass
    ``http_client`` to bring your own httpx client (proxies, event hooks).
    """

    _http_class: type[H]

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        headers: dict[str, str] | None = None,
        http_client: H | None = None,
    ) -> None:
        self._config = Config.build(base_url, api_key, timeout, max_retries, max_retry_wait, headers)
        self._http: H = http_client or self._http_class(timeout=self._config.timeout)
        self._owns_http = http_client is None

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def _request(self, call: Call) -> httpx.Request:
        return self._http.build_request(
            call.method, call.url, params=call.params, json=call.json,
            headers=self._config.request_headers(call), timeout=call.timeout or self._config.timeout,
        )


def send(call: Call, config: Config) -> Flow[httpx.Response]:
    """The answer to ``call``, after retrying 429/503 and broken connections (bounded).

    ``Retry-After`` is honoured up to ``max_retry_wait`` seconds; a longer one
    is the caller's decision, so the answer is returned as it is. A broken
    connection is retried when the request is safe to repeat, or never left.
    """
    for attempt in itertools.count():
        try:
            response = yield call
        except httpx.TransportError as exc:
            unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            if attempt >= config.max_retries or not (call.repeatable or unsent):
                kind = errors.APITimeoutError if isinstance(exc, httpx.TimeoutException) else errors.APIConnectionError
                raise kind(f"{call.method} {call.url}: {exc or type(exc).__name__}") from exc
            yield Sleep(config.backoff(attempt, None))
            continue
        if response.status_code not in RETRY_STATUSES or attempt >= config.max_retries:
            return response
        hint = errors.retry_after(response)
        if hint is not None and hint > config.max_retry_wait:
            return response
        yield Sleep(config.backoff(attempt, hint))
    raise AssertionError("unreachable")


def is_event_stream(response: httpx.Response) -> bool:
    """A 200 that is an event stream (anything else a stream call gets is read and closed)."""
    content_type = response.headers.get("Content-Type", "")
    return response.status_code == 200 and content_type.startswith("text/event-stream")


def checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise errors.from_response(response)
    return response


def fetch(call: Call, config: Config, model: type[M]) -> Flow[M]:
    """Send ``call`` and parse its 2xx answer as ``model`` (any other answer raises)."""
    response = yield from send(call, config)
    return model.model_validate_json(checked(response).content)
