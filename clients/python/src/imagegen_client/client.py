"""``ImageGenClient``: the API from synchronous code (``httpx.Client`` underneath)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self, Unpack

import httpx
from httpx_sse import EventSource

from imagegen_client import _follow
from imagegen_client import _operations as ops
from imagegen_client._calls import (
    Call,
    ClientBase,
    Close,
    Emit,
    Flow,
    NextEvent,
    Sleep,
    Step,
    is_event_stream,
)
from imagegen_client.models import (
    CreateJobResponse,
    GenerateParams,
    HealthResponse,
    JobEvent,
    ResultResponse,
    StatusResponse,
    UsageResponse,
    WebhookSecretResponse,
)

DEFAULT_WAIT_TIMEOUT = 900.0


class ImageGenClient(ClientBase[httpx.Client]):
    """A client of the image generation API (arguments: see ``ClientBase``).

    Use it as a context manager, or call ``close()``.
    """

    _http_class = httpx.Client

    def health(self) -> HealthResponse:
        """``GET /health``: whether generation is configured, and with which model."""
        return self._run(ops.health(self._config))

    def create(self, prompt: str, *, idempotency_key: str | None = None, **params: Unpack[GenerateParams]) -> CreateJobResponse:
        """``POST /api/images/generate``: a PENDING job. Fields as in the API (``num_images``, ``size``...)."""
        return self._run(ops.create(self._config, prompt, dict(params), idempotency_key))

    def status(self, job_id: str) -> StatusResponse:
        """``GET /api/images/status/<id>``: status, progress and message."""
        return self._run(ops.status(self._config, job_id))

    def result(self, job_id: str) -> ResultResponse:
        """``GET /api/images/result/<id>``: images and metadata once COMPLETED, else status (and errors)."""
        return self._run(ops.result(self._config, job_id))

    def cancel(self, job_id: str) -> StatusResponse:
        """``POST /api/images/cancel/<id>``: the job, now CANCELLED (ConflictError if it had ended)."""
        return self._run(ops.cancel(self._config, job_id))

    def jobs(self, *, status: str | None = None, page_size: int = 20) -> Iterator[StatusResponse]:
        """Every job of the caller, newest first; pages of ``page_size`` are fetched as you iterate."""
        return self._iterate(ops.jobs(self._config, status, page_size))

    def events(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT_TIMEOUT) -> Iterator[JobEvent]:
        """The job's updates as they happen, until it ends (event stream, else long-poll)."""
        return self._iterate(_follow.updates(job_id, self._config, timeout))

    def wait(
        self, job_id: str, *, on_progress: Callable[[JobEvent], Any] | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    ) -> ResultResponse:
        """Follow a job to its end: the COMPLETED result, else JobFailedError (or JobTimeoutError)."""
        return self._run(_follow.wait(job_id, self._config, timeout), on_progress)

    def generate(
        self, prompt: str, *, on_progress: Callable[[JobEvent], Any] | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT, idempotency_key: str | None = None,
        **params: Unpack[GenerateParams],
    ) -> ResultResponse:
        """Create a job and ``wait`` for it: ``on_progress`` gets each update, in order."""
        job = self.create(prompt, idempotency_key=idempotency_key, **params)
        return self.wait(job.job_id, on_progress=on_progress, timeout=timeout)

    def download(self, result: ResultResponse, directory: str | os.PathLike[str] = ".") -> list[Path]:
        """Save the result's images in ``directory`` (``<job_id>_image_1.png``...); their paths."""
        return self._run(ops.download(self._config, result, directory))

    def webhook_secret(self, *, rotate: bool = False) -> WebhookSecretResponse:
        """The key that signs your jobs' webhooks (``rotate=True``: a new one, the old one kept 24 h)."""
        return self._run(ops.webhook_secret(self._config, rotate))

    def usage(self, start: str | None = None, end: str | None = None) -> UsageResponse:
        """Your totals per day (UTC) from ``start`` to ``end`` (YYYY-MM-DD; default this month)."""
        return self._run(ops.usage(self._config, start, end))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ effects

    def _run(self, flow: Flow[Any], on_emit: Callable[[Any], Any] | None = None) -> Any:
        outcome: list[Any] = []
        for value in self._iterate(flow, outcome):
            if on_emit is not None:
                on_emit(value)
        return outcome[0]

    def _iterate(self, flow: Flow[Any], outcome: list[Any] | None = None) -> Iterator[Any]:
        """Perform the flow's effects, yield what it emits, put its result in ``outcome``."""
        step, streams = Step(flow, outcome), dict[httpx.Response, Iterator[Any]]()
        try:
            while step.effect is not None:
                if not isinstance(step.effect, Emit):
                    step.resume(*self._attempt(step.effect, streams))
                    continue
                yield step.effect.value
                step.resume()
        finally:
            step.close()
            self._close_streams(streams)

    @staticmethod
    def _close_streams(streams: dict[httpx.Response, Iterator[Any]]) -> None:
        for response in streams:
            response.close()

    def _attempt(self, effect: Any, streams: dict[httpx.Response, Iterator[Any]]) -> tuple[Any, Exception | None]:
        try:
            return self._perform(effect, streams), None
        except Exception as exc:  # noqa: BLE001 - thrown into the flow, which decides
            return None, exc

    def _perform(self, effect: Call | NextEvent | Close | Sleep, streams: dict[httpx.Response, Iterator[Any]]) -> Any:
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
        elif isinstance(effect, NextEvent):
            return next(streams[effect.stream], None)
        elif isinstance(effect, Close):
            streams.pop(effect.stream, None)
            effect.stream.close()
        else:
            response = self._http.send(self._request(effect), stream=effect.stream)
            if effect.stream and is_event_stream(response):
                streams[response] = EventSource(response).iter_sse()
            elif effect.stream:
                response.read()
                response.close()
            return response
        return None
