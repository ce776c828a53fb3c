"""``GET /api/images/status/<job_id>?wait=N``: answer when the status changes, or after N s.

What the caller last saw is given by ``If-None-Match`` (the ``ETag`` of an
earlier status response: exact) or ``?since=<updated_at>`` (its
``updated_at``, to the second). When the job already differs from that, or
is finished, or the caller gives neither, the answer is immediate; otherwise
a Firestore listener on the job's document wakes the request at the first
change of the status body (status, progress, message, errors, updated_at).
After N seconds without one, the unchanged status is answered: always 200
with the body, never 304, so a client needs no cached copy.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import flask

from imagegen.api.job_watch import JobWatch, remaining
from imagegen.http import ascii_int, error_response, json_response
from imagegen.models import JobStatus, StatusResponse
from imagegen.results import status_body

MAX_WAIT_SECONDS = 30
_WAIT_ERROR = f"wait doit être un entier entre 1 et {MAX_WAIT_SECONDS} (secondes)"


def wait_seconds(request: flask.Request) -> int | flask.Response:
    """``?wait=``: 0 when absent, 1..30, or the 400 answer for anything else."""
    raw = request.args.get("wait")
    if raw is None:
        return 0
    seconds = ascii_int(raw)
    if seconds is None or not 1 <= seconds <= MAX_WAIT_SECONDS:
        return error_response(400, _WAIT_ERROR)
    return seconds


def etag(body: StatusResponse) -> str:
    """A strong ETag of the status body (the same body always gives the same tag)."""
    digest = hashlib.sha256(body.model_dump_json(exclude_none=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def status_response(job: dict[str, Any]) -> flask.Response:
    """The status body with its ``ETag``."""
    body = status_body(job)
    return json_response(body, headers={"ETag": etag(body)})


def _already_seen(request: flask.Request, body: StatusResponse) -> bool:
    """True when the caller says it has seen ``body`` (If-None-Match wins over since)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag(body) in tags
    since = request.args.get("since")
    return since is not None and since == body.updated_at


def wait_for_change(request: flask.Request, job: dict[str, Any], wait: int) -> dict[str, Any]:
    """The job as soon as its status body differs from what the caller saw, or after ``wait`` s."""
    seen = status_body(job)
    if JobStatus(job["status"]).is_terminal or not _already_seen(request, seen):
        return job
    deadline = time.monotonic() + wait
    with JobWatch(job["job_id"]) as watch:
        while remaining(deadline):
            state = watch.next(remaining(deadline))
            if state is None:
                break
            # The listener's first snapshot can trail the read this wait started from:
            # a state older than that is no change (it would move the caller backwards).
            if state is not JobWatch.TIMEOUT and state.job["updated_at"] >= job["updated_at"]:
                job = state.job
                if status_body(job) != seen:
                    break
    return job
