"""``AsyncImageGenClient``: the same API as ``ImageGenClient``, for asyncio (``httpx.AsyncClient``)."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self, Unpack

import httpx
from httpx_sse import EventSource

from imagegen_client import _calls, _follow, models
from imagegen_client import _operations as ops
from imagegen_client._calls import ClientBase, Emit, Flow, Step
from imagegen_client.client import DEFAULT_WAIT_TIMEOUT


class AsyncImageGenClient(ClientBase[httpx.AsyncClient]):
    """``ImageGenClient`` for asyncio: the same arguments and methods, awaited.

    ``on_progress`` may be a plain function or a coroutine function.
    """

    _http_class = httpx.AsyncClient

    async def health(self) -> models.HealthResponse:
        return await self._run(ops.health(self._config))

    async def create(self, prompt: str, *, idempotency_key: str | None = None, **params: Unpack[models.GenerateParams]) -> models.CreateJobResponse:
        return await self._run(ops.create(self._config, prompt, dict(params), idempotency_key))

    async def status(self, job_id: str) -> models.StatusResponse:
        return await self._run(ops.status(self._config, job_id))

    async def result(self, job_id: str) -> models.ResultResponse:
        return await self._run(ops.result(self._config, job_id))

    async def cancel(self, job_id: str) -> models.StatusResponse:
        return await self._run(ops.cancel(self._config, job_id))

    def jobs(self, *, status: str | None = None, page_size: int = 20) -> AsyncIterator[models.StatusResponse]:
        return self._iterate(ops.jobs(self._config, status, page_size))

    def events(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT_TIMEOUT) -> AsyncIterator[models.JobEvent]:
        return self._iterate(_follow.updates(job_id, self._config, timeout))

    async def wait(
        self, job_id: str, *, on_progress: Callable[[models.JobEvent], Any] | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    ) -> models.ResultResponse:
        return await self._run(_follow.wait(job_id, self._config, timeout), on_progress)

    async def generate(
        self, prompt: str, *, on_progress: Callable[[models.JobEvent], Any] | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT, idempotency_key: str | None = None,
        **params: Unpack[models.GenerateParams],
    ) -> models.ResultResponse:
        job = await self.create(prompt, idempotency_key=idempotency_key, **params)
        return await self.wait(job.job_id, on_progress=on_progress, timeout=timeout)

    async def download(self, result: models.ResultResponse, directory: str | os.PathLike[str] = ".") -> list[Path]:
        return await self._run(ops.download(self._config, result, directory))

    async def webhook_secret(self, *, rotate: bool = False) -> models.WebhookSecretResponse:
        return await self._run(ops.webhook_secret(self._config, rotate))

    async def usage(self, start: str | None = None, end: str | None = None) -> models.UsageResponse:
        return await self._run(ops.usage(self._config, start, end))

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ effects

    async def _run(self, flow: Flow[Any], on_emit: Callable[[Any], Any] | None = None) -> Any:
        outcome: list[Any] = []
        async for value in self._iterate(flow, outcome):
            if on_emit is not None and inspect.isawaitable(answer := on_emit(value)):
                await answer
        return outcome[0]

    async def _iterate(self, flow: Flow[Any], outcome: list[Any] | None = None) -> AsyncIterator[Any]:
        step, streams = Step(flow, outcome), dict[httpx.Response, AsyncIterator[Any]]()
        try:
            while step.effect is not None:
                if not isinstance(step.effect, Emit):
                    step.resume(*await self._attempt(step.effect, streams))
                    continue
                yield step.effect.value
                step.resume()
        finally:
            step.close()
            await self._close_streams(streams)

    @staticmethod
    async def _close_streams(streams: dict[httpx.Response, AsyncIterator[Any]]) -> None:
        for response in streams:
            await response.aclose()

    async def _attempt(self, effect: Any, streams: dict[httpx.Response, AsyncIterator[Any]]) -> tuple[Any, Exception | None]:
        try:
            return await self._perform(effect, streams), None
        except Exception as exc:  # noqa: BLE001 - thrown into the flow, which decides
            return None, exc

    async def _perform(self, effect: _calls.Call | _calls.NextEvent | _calls.Close | _calls.Sleep, streams: dict[httpx.Response, AsyncIterator[Any]]) -> Any:
        if isinstance(effect, _calls.Sleep):
            await asyncio.sleep(effect.seconds)
        elif isinstance(effect, _calls.NextEvent):
            return await anext(streams[effect.stream], None)
        elif isinstance(effect, _calls.Close):
            streams.pop(effect.stream, None)
            await effect.stream.aclose()
        else:
            response = await self._http.send(self._request(effect), stream=effect.stream)
            if effect.stream and _calls.is_event_stream(response):
                streams[response] = EventSource(response).aiter_sse()
            elif effect.stream:
                await response.aread()
                await response.aclose()
            return response
        return None
