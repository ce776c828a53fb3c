"""Following a job to its end: the event stream, falling back to long-poll.

``GET /api/images/events/<id>`` pushes one ``status`` event per change; the
server closes it after the terminal event, or after its length cap, when the
client reconnects after ``retry:`` with ``Last-Event-ID`` (as EventSource
does). When the stream is unavailable (an older server, a proxy that does not
pass ``text/event-stream``, connections that keep breaking), the job is
followed with ``GET /api/images/status/<id>?wait=N`` and its ETag instead.
"""

from __future__ import annotations

import time

import httpx

from imagegen_client import errors
from imagegen_client._calls import (
    Close,
    Config,
    Emit,
    Flow,
    NextEvent,
    Sleep,
    checked,
    fetch,
    is_event_stream,
    send,
)
from imagegen_client.models import JobEvent, JobStatus, ResultResponse

LONG_POLL_SECONDS = 30  # the server's maximum
MIN_POLL_INTERVAL = 1.0  # between two polls that saw no change (a server without long-poll)
STREAM_READ_SECONDS = 45.0  # three of the server's 15 s heartbeats
STREAM_FAILURES = 3  # consecutive broken streams before falling back to long-poll
RETRY_SECONDS = 2.0  # until the stream's ``retry:`` says otherwise


class StreamUnavailable(Exception):
    """The event stream cannot be used here: follow the job by long-poll."""


class _Deadline:
    def __init__(self, job_id: str, timeout: float | None) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left (raises JobTimeoutError when none)."""
        if self.at is None:
            return float("inf")
        left = self.at - time.monotonic()
        if left <= 0:
            raise errors.JobTimeoutError(f"{self.job_id} : toujours en cours après {self.timeout:g} s")
        return left


class _Seen:
    """The last update emitted, for the long-poll to continue from."""

    last: JobEvent | None = None


def _changed(update: JobEvent, last: JobEvent | None) -> bool:
    if last is None:
        return True
    fields = ("status", "progress", "message", "updated_at", "errors")
    return any(getattr(update, name) != getattr(last, name) for name in fields)


def _stream_usable(response: httpx.Response) -> bool:
    """False for answers that mean "no stream here" rather than an error about the job.

    A 404 is among them: an older server has no such route, and a job that
    really does not exist gets its NotFoundError from the long-poll.
    """
    if response.status_code in (404, 405, 406, 501):
        return False
    return response.status_code != 200 or is_event_stream(response)


def stream_updates(job_id: str, config: Config, deadline: _Deadline, seen: _Seen) -> Flow[JobEvent | None]:
    """Emit each update the stream pushes; return the terminal one (None after a 204)."""
    last_id = ""
    retry = RETRY_SECONDS
    failures = 0
    while True:
        deadline.remaining()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        call = config.call(
            "GET", "/api/images/events", job_id, headers=headers, stream=True,
            # A read never outlasts the deadline: silence past it ends in JobTimeoutError.
            timeout=config.timeout_for(min(STREAM_READ_SECONDS, deadline.remaining())),
        )
        try:
            response = yield from send(call, config)
        except errors.APIConnectionError as exc:
            raise StreamUnavailable from exc
        if response.status_code == 204:  # the terminal event was already sent to this id
            return None
        if not _stream_usable(response):  # (the client has read and closed such answers)
            raise StreamUnavailable
        checked(response)
        try:
            while (event := (yield NextEvent(response))) is not None:
                retry = event.retry / 1000 if event.retry is not None else retry
                last_id = event.id or last_id
                if event.event != "status":
                    continue
                update = JobEvent.model_validate_json(event.data)
                failures, seen.last = 0, update
                yield Emit(update)
                if update.status.is_terminal:
                    return update
                deadline.remaining()
        except httpx.TransportError:  # a dropped connection, or silence past the read timeout
            failures += 1
            if failures >= STREAM_FAILURES:
                raise StreamUnavailable from None
        yield Close(response)  # (the client closes streams a flow leaves open when it ends)
        yield Sleep(min(retry, deadline.remaining()))  # closed at the server's cap: reconnect


def poll_updates(job_id: str, config: Config, deadline: _Deadline, last: JobEvent | None) -> Flow[JobEvent]:
    """Emit each change seen by long-polling ``status``; return the terminal update."""
    etag = ""
    while True:
        wait = max(1, min(LONG_POLL_SECONDS, int(deadline.remaining())))
        params: dict[str, str | int] = {"wait": wait}
        if last is not None and not etag:
            params["since"] = last.updated_at
        call = config.call(
            "GET", "/api/images/status", job_id, params=params,
            headers={"If-None-Match": etag} if etag else {},
            timeout=config.timeout_for(wait + 15.0),
        )
        started = time.monotonic()
        response = checked((yield from send(call, config)))
        etag = response.headers.get("ETag", "")
        update = JobEvent.model_validate_json(response.content)
        if _changed(update, last):
            last = update
            yield Emit(update)
            if update.status.is_terminal:
                return update
        else:
            yield Sleep(max(0.0, MIN_POLL_INTERVAL - (time.monotonic() - started)))


def updates(job_id: str, config: Config, timeout: float | None) -> Flow[JobEvent | None]:
    """Emit the job's updates until it ends; return the last one."""
    deadline = _Deadline(job_id, timeout)
    seen = _Seen()
    try:
        return (yield from stream_updates(job_id, config, deadline, seen))
    except StreamUnavailable:
        return (yield from poll_updates(job_id, config, deadline, seen.last))


def wait(job_id: str, config: Config, timeout: float | None) -> Flow[ResultResponse]:
    """Follow the job to its end: its COMPLETED result, else JobFailedError."""
    final = yield from updates(job_id, config, timeout)
    if final is not None and final.status is JobStatus.COMPLETED and final.images is not None:
        result = ResultResponse.model_validate(final.model_dump(exclude={"progress", "created_at", "updated_at"}))
    else:
        result = yield from fetch(config.call("GET", "/api/images/result", job_id), config, ResultResponse)
    if result.status is not JobStatus.COMPLETED:
        raise errors.JobFailedError(result)
    return result

