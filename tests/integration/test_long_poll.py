"""``GET /api/images/status/<job_id>?wait=N``: long-poll on ETag / If-None-Match or ``since``."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.integration.helpers import create_job


def _status_when(api: Any, job_id: str, predicate: Any, timeout: float = 30) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/api/images/status/{job_id}")
        if predicate(response.json()):
            return response
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.05)


def _timed_get(api: Any, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = api.get(url, **kwargs)
    return response, time.monotonic() - started


@pytest.mark.parametrize("baseline", ["etag", "since"])
def test_long_poll_answers_as_soon_as_the_job_changes(api: Any, standin: Any, baseline: str) -> None:
    standin.configure(latency_ms=2000)
    job_id = create_job(api)
    seen = _status_when(api, job_id, lambda body: body["status"] == "GENERATING")
    kwargs: dict[str, Any] = (
        {"headers": {"If-None-Match": seen.headers["ETag"]}}
        if baseline == "etag"
        else {"params": {"since": seen.json()["updated_at"]}}
    )
    response, elapsed = _timed_get(api, f"/api/images/status/{job_id}?wait=20", **kwargs)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["progress"]) != ("GENERATING", seen.json()["progress"])
    assert elapsed < 10, elapsed  # the image took ~2 s; the wait allowed 20
    assert response.headers["ETag"] != seen.headers["ETag"]
    api.wait_for_job(job_id)


def test_long_poll_times_out_with_the_same_body(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=6000)
    job_id = create_job(api)
    seen = _status_when(api, job_id, lambda body: body["status"] == "GENERATING")
    response, elapsed = _timed_get(
        api, f"/api/images/status/{job_id}?wait=2", headers={"If-None-Match": seen.headers["ETag"]}
    )
    assert response.status_code == 200  # 200 with the body at the timeout, never 304
    assert response.json() == seen.json() and response.headers["ETag"] == seen.headers["ETag"]
    assert 1.9 <= elapsed < 4, elapsed
    # `since` with the current updated_at waits the same way.
    response, elapsed = _timed_get(
        api, f"/api/images/status/{job_id}", params={"wait": "1", "since": seen.json()["updated_at"]}
    )
    assert response.json() == seen.json() and 0.9 <= elapsed < 3, elapsed
    api.wait_for_job(job_id)


def test_long_poll_is_immediate_without_a_baseline_or_when_finished(api: Any) -> None:
    job_id = create_job(api)
    final = api.wait_for_job(job_id)
    done = api.get(f"/api/images/status/{job_id}")
    etag = done.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    for kwargs in (
        {},
        {"headers": {"If-None-Match": etag}},  # finished: nothing more will change
        {"headers": {"If-None-Match": '"stale", W/"other"'}},
        {"params": {"since": "2000-01-01T00:00:00Z"}},
    ):
        response, elapsed = _timed_get(api, f"/api/images/status/{job_id}?wait=10", **kwargs)
        assert response.status_code == 200 and response.json() == final, kwargs
        assert elapsed < 1.5, (kwargs, elapsed)
    # Plain status is unchanged: If-None-Match does not turn it into a 304.
    plain = api.get(f"/api/images/status/{job_id}", headers={"If-None-Match": etag})
    assert plain.status_code == 200 and plain.json() == final and plain.headers["ETag"] == etag


@pytest.mark.parametrize("wait", ["0", "31", "-1", "1.5", "abc", "", " 5", "٣"])
def test_wait_must_be_an_integer_from_1_to_30(api: Any, wait: str) -> None:
    response = api.get("/api/images/status/img_doesnotexist00", params={"wait": wait})
    assert response.status_code == 400
    assert response.json()["error"] == "wait doit être un entier entre 1 et 30 (secondes)"
