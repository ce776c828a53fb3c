"""``GET /api/images/events/<job_id>``: the job's status as Server-Sent Events.

One ``status`` event per change of the job document, pushed by a Firestore
listener on that document. Its ``id`` is the document's update time in
microseconds (``job_watch.JobState.version``): it grows with every write and
means the same on every instance, so a reconnecting ``EventSource`` (which
sends it back as ``Last-Event-ID``) resumes anywhere without repeats.

The stream ends after the terminal event (COMPLETED, FAILED, CANCELLED) and
after ``SSE_MAX_SECONDS`` in any case: an open stream keeps an instance
billed and holds one of its concurrent request slots, and ``EventSource``
reconnects by itself. A client that already saw the terminal event gets
204, which tells ``EventSource`` to stop reconnecting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import flask

from imagegen.api.job_watch import JobState, JobWatch, remaining
from imagegen.config import load_settings
from imagegen.http import ascii_int, error_response
from imagegen.logs import fields, log_context
from imagegen.models import JOB_ID_PATTERN, JobEvent, JobStatus
from imagegen.results import result_images, result_metadata, status_body

logger = logging.getLogger(__name__)

RETRY_MILLISECONDS = 2000
KEEPALIVE = ": keepalive\n\n"
_EVENT_STREAM = "text/event-stream; charset=utf-8"
_HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies that buffer (nginx and the like) must pass each event on at once.
    "X-Accel-Buffering": "no",
}


def event_body(job: dict[str, Any]) -> JobEvent:
    """The status body, plus ``images`` and ``metadata`` once COMPLETED."""
    body = status_body(job).model_dump()
    if body["status"] == JobStatus.COMPLETED:
        body |= {"images": result_images(job), "metadata": result_metadata(job)}
    return JobEvent(**body)


def format_event(version: int, data: str) -> str:
    return f"id: {version}\nevent: status\ndata: {data}\n\n"


def last_event_id(request: flask.Request) -> int | flask.Response | None:
    """``Last-Event-ID`` (header, else ``?last_event_id=``): an int, None, or the 400 answer."""
    raw = request.headers.get("Last-Event-ID", request.args.get("last_event_id", ""))
    raw = raw.strip()
    if not raw:
        return None
    event_id = ascii_int(raw, max_digits=20)
    if event_id is None:
        return error_response(400, "Last-Event-ID invalide (identifiant d'événement attendu)")
    return event_id


def response(request: flask.Request, job_id: str, owner: str) -> flask.Response | None:
    """The event stream of ``owner``'s job; None when there is no such job of theirs.

    The listener starts before the response so that a missing job is a plain
    404 and the first event is ready when the stream opens.
    """
    seen = last_event_id(request)
    if isinstance(seen, flask.Response):
        return seen
    if not JOB_ID_PATTERN.match(job_id):
        return None
    watch = JobWatch(job_id)
    try:
        first = watch.first()
    except BaseException:
        watch.close()
        raise
    if first is None or first.job.get("owner") != owner:
        watch.close()
        return None
    if JobStatus(first.job["status"]).is_terminal and seen is not None and first.version <= seen:
        watch.close()
        return flask.Response(status=204, headers=_HEADERS)
    if request.method == "HEAD":  # the headers a GET would get, and no stream to hold open
        watch.close()
        return flask.Response(content_type=_EVENT_STREAM, headers=_HEADERS)
    settings = load_settings()
    stream = _events(
        watch, first, seen or 0, settings.sse_max_seconds, settings.sse_heartbeat_seconds
    )
    response = flask.Response(stream, content_type=_EVENT_STREAM, headers=_HEADERS)
    # The server closes the response even if it never started the generator
    # (whose own cleanup would then not run): the listener ends either way.
    response.call_on_close(watch.close)
    return response


def _events(
    watch: JobWatch, first: JobState, seen: int, max_seconds: float, heartbeat: float
) -> Iterator[str]:
    """The stream's text: ``retry``, then each state newer than ``seen``, keepalives between.

    A write that changes nothing a client sees (a worker extending its lease)
    sends no event.
    """
    job_id = first.job["job_id"]
    deadline = time.monotonic() + max_seconds
    sent = 0
    ending = "client gone"  # unless one of the returns below says otherwise
    last_data = ""
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        state: Any = first
        quiet_since = time.monotonic()
        while True:
            if state is None:
                ending = "deleted"
                return
            if state is not JobWatch.TIMEOUT and state.version > seen:
                seen = state.version
                data = event_body(state.job).model_dump_json(exclude_none=True)
                if data != last_data:
                    yield format_event(state.version, data)
                    sent += 1
                    last_data = data
                    quiet_since = time.monotonic()
                if JobStatus(state.job["status"]).is_terminal:
                    ending = "terminal"
                    return
            if time.monotonic() - quiet_since >= heartbeat:
                yield KEEPALIVE
                quiet_since = time.monotonic()
            if not remaining(deadline) or not watch.active:
                ending = "cap" if watch.active else "listener stopped"
                return
            wait = min(remaining(deadline), heartbeat - (time.monotonic() - quiet_since))
            state = watch.next(wait)
    finally:
        # Also reached when the client goes away: the server closes the
        # generator at its next write (a keepalive at the latest).
        watch.close()
        with log_context(job_id=job_id):
            logger.info("event stream closed", **fields(events=sent, ending=ending))
