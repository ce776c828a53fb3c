"""Event stream and long-poll logic that needs no stack: parsing, ETags, event bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest

from imagegen.api import events, long_poll
from imagegen.results import status_body

APP = flask.Flask(__name__)
NOW = datetime(2026, 12, 1, 12, 0, 5, 250_000, tzinfo=UTC)


def _job(status: str = "GENERATING", **changes: Any) -> dict[str, Any]:
    record = {
        "object_name": "generated_images/img_abcdefgh12345678/image_1.png",
        "format": "PNG",
        "content_type": "image/png",
        "size_bytes": 1234,
        "dimensions": "512x512",
        "description": "Un phare",
    }
    metadata = {
        "model_name": "gemini-3.1-flash-image",
        "version": "stand-in",
        "generation_time_seconds": 1.5,
        "input_tokens": 10,
        "output_size_bytes": 1234,
        "timestamp": "2026-12-01T12:00:05Z",
    }
    return {
        "job_id": "img_abcdefgh12345678",
        "status": status,
        "message": "m",
        "progress": 30,
        "errors": [],
        "images": {"1": record},
        "metadata": metadata if status == "COMPLETED" else None,
        "created_at": NOW,
        "updated_at": NOW,
    } | changes


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 0), ("?wait=1", 1), ("?wait=30", 30), ("?wait=007", 7)],
)
def test_wait_accepts_integers_from_1_to_30(query: str, expected: int) -> None:
    with APP.test_request_context(f"/s{query}"):
        assert long_poll.wait_seconds(flask.request) == expected


@pytest.mark.parametrize("value", ["0", "31", "-1", "1.5", "", "%20%35", "%D9%A3", "1e1"])
def test_wait_refuses_anything_else(value: str) -> None:
    with APP.test_request_context(f"/s?wait={value}"):
        answer = long_poll.wait_seconds(flask.request)
    assert isinstance(answer, flask.Response) and answer.status_code == 400


def test_etag_follows_the_status_body_only() -> None:
    job = _job()
    tag = long_poll.etag(status_body(job))
    assert tag == long_poll.etag(status_body(dict(job, lease={"owner": "w"})))  # not in the body
    assert tag != long_poll.etag(status_body(job | {"progress": 50}))
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34


@pytest.mark.parametrize(
    ("headers", "query", "seen"),
    [
        ({}, "", False),
        ({"If-None-Match": "TAG"}, "", True),
        ({"If-None-Match": 'W/TAG'}, "", True),
        ({"If-None-Match": '"other", TAG'}, "", True),
        ({"If-None-Match": "*"}, "", True),
        ({"If-None-Match": '"other"'}, "?since=2026-12-01T12:00:05Z", False),  # If-None-Match wins
        ({}, "?since=2026-12-01T12:00:05Z", True),
        ({}, "?since=2026-12-01T12:00:04Z", False),
    ],
)
def test_what_the_caller_saw(headers: dict[str, str], query: str, seen: bool) -> None:
    body = status_body(_job())
    tag = long_poll.etag(body)
    headers = {name: value.replace("TAG", tag) for name, value in headers.items()}
    with APP.test_request_context(f"/s{query}", headers=headers):
        assert long_poll._already_seen(flask.request, body) is seen


def test_last_event_id_from_the_header_or_the_query() -> None:
    with APP.test_request_context("/e?last_event_id=5", headers={"Last-Event-ID": "7"}):
        assert events.last_event_id(flask.request) == 7
    with APP.test_request_context("/e?last_event_id=5"):
        assert events.last_event_id(flask.request) == 5
    with APP.test_request_context("/e"):
        assert events.last_event_id(flask.request) is None
    for bad in ("x", "-3", "1" * 21):
        with APP.test_request_context("/e", headers={"Last-Event-ID": bad}):
            answer = events.last_event_id(flask.request)
        assert isinstance(answer, flask.Response) and answer.status_code == 400


def test_event_bodies_carry_the_result_only_at_the_end() -> None:
    running = events.event_body(_job()).model_dump(exclude_none=True)
    assert set(running) == {"job_id", "status", "message", "progress", "created_at", "updated_at"}
    assert running["updated_at"] == "2026-12-01T12:00:05Z"
    done = events.event_body(_job("COMPLETED", progress=100)).model_dump(exclude_none=True)
    assert done["images"][0]["dimensions"] == "512x512" and done["metadata"]["version"] == "stand-in"
    failed = events.event_body(_job("FAILED", errors=["boom"])).model_dump(exclude_none=True)
    assert failed["errors"] == ["boom"] and "images" not in failed


def test_event_text_is_one_sse_block() -> None:
    assert events.format_event(12, '{"a":1}') == 'id: 12\nevent: status\ndata: {"a":1}\n\n'


class _Watch:
    """A JobWatch that reports the given states, then times out."""

    TIMEOUT = long_poll.JobWatch.TIMEOUT
    states: list[Any] = []

    def __init__(self, _job_id: str) -> None:
        self._states = list(type(self).states)

    def __enter__(self) -> _Watch:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def next(self, _timeout: float) -> Any:
        return self._states.pop(0) if self._states else self.TIMEOUT


def test_a_long_poll_never_answers_a_state_older_than_it_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagegen.api.job_watch import JobState

    read = _job("SAVING", progress=95)
    older = _job(progress=90, updated_at=NOW - timedelta(milliseconds=300))
    newer = _job("COMPLETED", progress=100, updated_at=NOW + timedelta(milliseconds=300))
    _Watch.states = [JobState(1, older), JobState(3, newer)]
    monkeypatch.setattr(long_poll, "JobWatch", _Watch)
    with APP.test_request_context("/s?wait=1", headers={"If-None-Match": long_poll.etag(status_body(read))}):
        assert long_poll.wait_for_change(flask.request, read, 1)["progress"] == 100
    _Watch.states = [JobState(1, older)]
    with APP.test_request_context("/s?wait=1", headers={"If-None-Match": long_poll.etag(status_body(read))}):
        assert long_poll.wait_for_change(flask.request, read, 1)["progress"] == 95  # timed out on what it read
