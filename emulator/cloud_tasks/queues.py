"""Queues that hold tasks and dispatch them the way Cloud Tasks does.

One asyncio loop (a background thread) dispatches every queue; the gRPC
handlers (other threads) change the queues under one lock and wake the
queue's scheduler through the loop, so a new task is dispatched at once, with
no polling. A queue's scheduler starts a dispatch when all of these hold:

* the queue runs (not paused) and fewer than ``max_concurrent_dispatches`` of
  its dispatches are in flight;
* the earliest task's ``schedule_time`` has come;
* its token bucket (``max_burst_size`` tokens, refilled at
  ``max_dispatches_per_second``) has a token.

A dispatch is one HTTP request (httpx2), cut at the task's ``dispatch_deadline``
(default 10 minutes). A 2xx deletes the task; anything else (no answer, a
timeout, another status) schedules a retry after the queue's backoff (or the
``Retry-After`` of a 429/503, when longer), until ``max_attempts`` and
``max_retry_duration`` are spent. A task's name cannot be used again for
``NAME_REUSE_SECONDS`` after it was deleted or ran (``ALREADY_EXISTS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx2
from google.cloud import tasks_v2

from emulator.cloud_tasks.config import QueueConfig
from emulator.cloud_tasks.oidc import TokenMinter

log = logging.getLogger("emulator.cloud_tasks")

NAME_REUSE_SECONDS = 3600.0
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
MIN_DISPATCH_DEADLINE = timedelta(seconds=15)
MAX_DISPATCH_DEADLINE = timedelta(minutes=30)
MAX_SCHEDULE_AHEAD = timedelta(days=30)
USER_AGENT = "Google-Cloud-Tasks"
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
_REPLACED_HEADERS = {"host", "content-length", "user-agent", "authorization"}
# google.rpc.Code of an attempt's response_status, from its HTTP status.
_HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 412: 9, 429: 8, 499: 1, 501: 12, 503: 14, 504: 4}
_DEADLINE_EXCEEDED, _UNAVAILABLE = 4, 14


class ApiError(Exception):
    """A request the API refuses: the gRPC status and message to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _timestamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _rpc_code(status: int) -> int:
    if 200 <= status < 300:
        return 0
    return _HTTP_TO_RPC.get(status, 13 if status >= 500 else 9)


@dataclass
class _Entry:
    """A task in its queue: what was created plus its dispatch history."""

    task: tasks_v2.Task
    short_name: str
    eta: float
    version: int = 0
    in_flight: bool = False
    first_dispatch_at: float | None = None
    response_count: int = 0
    execution_count: int = 0
    """Responses below 500: ``X-CloudTasks-TaskExecutionCount``."""
    previous_response: int | None = None
    attempts: list[tasks_v2.Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    deadline: float


class Queue:
    """One queue: its tasks, its scheduler (a coroutine on the emulator's loop)."""

    def __init__(self, emulator: Emulator, name: str, config: QueueConfig, paused: bool = False) -> None:
        self.name = name
        self.short_name = name.rsplit("/", 1)[-1]
        self.config = config
        self.paused = paused
        self._emulator = emulator
        self._lock = emulator.lock
        self._tasks: dict[str, _Entry] = {}
        self._recent_names: dict[str, float] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()
        self._in_flight = 0
        self._tokens = float(config.max_burst_size)
        self._refilled = time.monotonic()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the API (any thread, under the lock)

    def proto(self) -> tasks_v2.Queue:
        state = tasks_v2.Queue.State.PAUSED if self.paused else tasks_v2.Queue.State.RUNNING
        return tasks_v2.Queue(name=self.name, state=state, **self.config.queue_fields())

    def create_task(self, task: tasks_v2.Task) -> _Entry:
        now = time.time()
        short = self._task_id(task.name)
        self._forget_old_names(now)
        if short in self._tasks or short in self._recent_names:
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
        http = task.http_request
        if not http.url.startswith(("http://", "https://")):
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "Only HTTP tasks with an http(s) url are supported")
        deadline = task.dispatch_deadline or DEFAULT_DISPATCH_DEADLINE
        if not MIN_DISPATCH_DEADLINE <= deadline <= MAX_DISPATCH_DEADLINE:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "dispatch_deadline must be between 15 s and 30 min")
        eta = task.schedule_time.timestamp() if "schedule_time" in task else now
        if eta > now + MAX_SCHEDULE_AHEAD.total_seconds():
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "schedule_time is more than 30 days ahead")
        stored = tasks_v2.Task(
            name=f"{self.name}/tasks/{short}",
            http_request=http,
            create_time=_timestamp(now),
            dispatch_deadline=deadline,
        )
        entry = _Entry(stored, short, max(eta, now))
        self._tasks[short] = entry
        self._schedule(entry)
        return entry

    def task(self, name: str) -> _Entry:
        entry = self._tasks.get(name.rsplit("/", 1)[-1]) if name.startswith(f"{self.name}/tasks/") else None
        if entry is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, "Requested entity was not found.")
        return entry

    def tasks(self) -> list[_Entry]:
        return sorted(self._tasks.values(), key=lambda e: (e.eta, e.short_name))

    def delete_task(self, name: str) -> None:
        self._drop(self.task(name), time.time())

    def purge(self) -> None:
        now = time.time()
        for entry in list(self._tasks.values()):
            self._drop(entry, now)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.wake()

    def view(self, entry: _Entry, view: int) -> tasks_v2.Task:
        """The API's Task; BASIC (the default) leaves out the request body, as Cloud Tasks does."""
        task = tasks_v2.Task(entry.task)
        task.schedule_time = _timestamp(entry.eta)
        task.dispatch_count = len(entry.attempts)
        task.response_count = entry.response_count
        if entry.attempts:
            task.first_attempt = tasks_v2.Attempt(dispatch_time=entry.attempts[0].dispatch_time)
            task.last_attempt = entry.attempts[-1]
        if view == tasks_v2.Task.View.FULL:
            task.view = tasks_v2.Task.View.FULL  # type: ignore[assignment]  # proto-plus enum field
        else:
            task.view = tasks_v2.Task.View.BASIC  # type: ignore[assignment]
            task.http_request.body = b""
        return task

    # ------------------------------------------------------------------ bookkeeping (under the lock)

    def _task_id(self, name: str) -> str:
        if not name:
            return str(random.randrange(10**18, 10**19))
        prefix = f"{self.name}/tasks/"
        short = name[len(prefix):] if name.startswith(prefix) else ""
        if not _TASK_ID.match(short):
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Task name must be {prefix}TASK_ID, TASK_ID of letters, digits, '-' or '_' (at most 500)",
            )
        return short

    def _forget_old_names(self, now: float) -> None:
        # Oldest first: every name gets the same window and is never re-added while in it.
        while self._recent_names:
            name, expires = next(iter(self._recent_names.items()))
            if expires > now:
                return
            del self._recent_names[name]

    def _drop(self, entry: _Entry, now: float) -> None:
        if self._tasks.get(entry.short_name) is entry:
            del self._tasks[entry.short_name]
            self._recent_names[entry.short_name] = now + NAME_REUSE_SECONDS

    def _schedule(self, entry: _Entry) -> None:
        entry.version += 1
        heapq.heappush(self._heap, (entry.eta, next(self._order), entry.short_name, entry.version))
        self.wake()

    def wake(self) -> None:
        self._emulator.loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ dispatching (on the loop)

    async def run(self) -> None:
        """The scheduler: start what may start, then sleep until something can change."""
        while True:
            self._wake.clear()
            with self._lock:
                delay = self._start_due()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _start_due(self) -> float | None:
        """Start every dispatch allowed now; seconds until the next may be (None: when woken)."""
        while not self.paused and self._in_flight < self.config.max_concurrent_dispatches:
            while self._heap and not self._current(self._heap[0]):
                heapq.heappop(self._heap)
            if not self._heap:
                return None
            eta, _, short, _ = self._heap[0]
            now = time.time()
            if eta > now:
                return eta - now
            wait = self._take_token()
            if wait:
                return wait
            heapq.heappop(self._heap)
            entry = self._tasks[short]
            request = self._request(entry, now)
            entry.in_flight = True
            self._in_flight += 1
            running = self._emulator.loop.create_task(self._dispatch(entry, request))
            self._running.add(running)
            running.add_done_callback(self._running.discard)
        return None

    def _current(self, item: tuple[float, int, str, int]) -> bool:
        entry = self._tasks.get(item[2])
        return entry is not None and entry.version == item[3] and not entry.in_flight

    def _take_token(self) -> float:
        rate, burst = self.config.max_dispatches_per_second, self.config.max_burst_size
        now = time.monotonic()
        self._tokens = min(float(burst), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate

    def _request(self, entry: _Entry, now: float) -> _Request:
        http = entry.task.http_request
        headers = {k: v for k, v in http.headers.items() if k.lower() not in _REPLACED_HEADERS}
        if http.body and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/octet-stream"
        headers |= {
            "User-Agent": USER_AGENT,
            "X-CloudTasks-QueueName": self.short_name,
            "X-CloudTasks-TaskName": entry.short_name,
            "X-CloudTasks-TaskRetryCount": str(len(entry.attempts)),
            "X-CloudTasks-TaskExecutionCount": str(entry.execution_count),
            "X-CloudTasks-TaskETA": f"{entry.eta:.6f}",
        }
        if entry.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(entry.previous_response)
        oidc = http.oidc_token
        if oidc.service_account_email:
            token = self._emulator.minter.token(oidc.service_account_email, oidc.audience or http.url)
            headers["Authorization"] = f"Bearer {token}"
        entry.attempts.append(tasks_v2.Attempt(schedule_time=_timestamp(entry.eta), dispatch_time=_timestamp(now)))
        if entry.first_dispatch_at is None:
            entry.first_dispatch_at = now
        method = tasks_v2.HttpMethod(http.http_method or tasks_v2.HttpMethod.POST).name
        return _Request(method, http.url, headers, http.body, entry.task.dispatch_deadline.total_seconds())

    async def _dispatch(self, entry: _Entry, request: _Request) -> None:
        status: int | None = None
        retry_after: str | None = None
        code, error = _UNAVAILABLE, ""
        started = time.monotonic()
        try:
            async with asyncio.timeout(request.deadline):
                response = await self._emulator.http.request(
                    request.method, request.url, headers=request.headers, content=request.body
                )
            status, retry_after = response.status_code, response.headers.get("Retry-After")
            code = _rpc_code(status)
        except TimeoutError:
            code, error = _DEADLINE_EXCEEDED, f"no response within the dispatch deadline ({request.deadline:g} s)"
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("dispatch of %s/%s crashed", self.short_name, entry.short_name)
            error = repr(exc)
        elapsed_ms = (time.monotonic() - started) * 1000
        with self._lock:
            self._finish(entry, status, code, error, retry_after)
        log.info(
            "%s/%s attempt %d: %s in %.0f ms",
            self.short_name,
            entry.short_name,
            len(entry.attempts),
            status if status is not None else error,
            elapsed_ms,
        )

    def _finish(self, entry: _Entry, status: int | None, code: int, error: str, retry_after: str | None) -> None:
        now = time.time()
        self._in_flight -= 1
        entry.in_flight = False
        self.wake()
        attempt = entry.attempts[-1]
        attempt.response_status = {"code": code, "message": error or (f"HTTP {status}" if status else "")}
        if status is not None:
            attempt.response_time = _timestamp(now)
            entry.response_count += 1
            entry.previous_response = status
            entry.execution_count += status < 500
        if self._tasks.get(entry.short_name) is not entry:
            return  # deleted or purged while it ran
        assert entry.first_dispatch_at is not None
        if status is not None and 200 <= status < 300:
            self._drop(entry, now)
            return
        if self.config.gives_up(len(entry.attempts), now - entry.first_dispatch_at):
            log.warning("%s/%s given up after %d attempts", self.short_name, entry.short_name, len(entry.attempts))
            self._drop(entry, now)
            return
        delay = self.config.retry_delay(len(entry.attempts) - 1)
        if status in (429, 503) and retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        entry.eta = now + delay
        self._schedule(entry)


class Emulator:
    """Every queue, the loop that dispatches them and the HTTP client they share."""

    def __init__(self, minter: TokenMinter) -> None:
        self.minter = minter
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._queues: dict[str, Queue] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, name="dispatch-loop", daemon=True)
        self._thread.start()
        self.http: httpx2.AsyncClient = asyncio.run_coroutine_threadsafe(self._client(), self.loop).result()
        self._schedulers: list[Any] = []

    @staticmethod
    async def _client() -> httpx2.AsyncClient:
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=200)
        return httpx2.AsyncClient(limits=limits, timeout=None, follow_redirects=True, trust_env=False)

    def create_queue(self, name: str, config: QueueConfig, paused: bool = False) -> Queue:
        """A new queue (the caller holds the lock); ``ApiError`` if the name is taken."""
        if name in self._queues:
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
        queue = Queue(self, name, config, paused)
        self._queues[name] = queue
        self._schedulers.append(asyncio.run_coroutine_threadsafe(queue.run(), self.loop))
        return queue

    def queue(self, name: str) -> Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise ApiError(grpc.StatusCode.NOT_FOUND, "Requested entity was not found.") from None

    def queues(self, parent: str) -> list[Queue]:
        return [q for name, q in sorted(self._queues.items()) if name.startswith(f"{parent}/queues/")]

    def close(self) -> None:
        for scheduler in self._schedulers:
            scheduler.cancel()
        asyncio.run_coroutine_threadsafe(self.http.aclose(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
