"""``GET /api/images/events/<job_id>``: Server-Sent Events pushed by a Firestore listener."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from emulator.stack import Stack
from tests.conftest import API_BASE_URL
from tests.integration.helpers import create_job, side_api
from tests.integration.sse import Block, blocks, events, open_stream

STATUS_ORDER = ["PENDING", "INITIALIZING", "GENERATING", "SAVING", "COMPLETED"]


def _wait_for_status(stream: requests.Response, status: str) -> tuple[list[Block], Any]:
    """Read events until one has ``status``; returns them and the block iterator."""
    seen = []
    reader = blocks(stream)
    for block in reader:
        if block.fields.get("event") == "status":
            seen.append(block)
            if block.data["status"] == status:
                return seen, reader
    raise AssertionError(f"stream ended before {status}: {[b.data['status'] for b in seen]}")


@contextlib.contextmanager
def jobs_queue_paused(stack: Stack) -> Iterator[Callable[[], None]]:
    """The jobs queue paused (tasks wait in it); yields ``resume``, also called on the way out."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    with grpc.insecure_channel(stack.urls["tasks"]) as channel:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        queue = stack.queues[0]
        client.pause_queue(name=queue, timeout=10)

        def resume() -> None:
            client.resume_queue(name=queue, timeout=10)

        try:
            yield resume
        finally:
            resume()


def test_a_job_streams_every_state_in_order_then_ends(stack: Stack, api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1500)
    # The queue waits until the stream is open, or the worker may claim the job first.
    with jobs_queue_paused(stack) as resume:
        job_id = create_job(api, num_images=4)
        with open_stream(job_id) as stream:
            assert stream.status_code == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert stream.headers["Cache-Control"] == "no-cache"
            assert stream.headers["X-Accel-Buffering"] == "no"
            reader = blocks(stream)
            everything = [next(reader), next(reader)]  # retry:, then the job as it is: PENDING
            resume()
            everything += list(reader)  # returns only because the server ends the stream
    assert everything[0].fields == {"retry": "2000"}
    received = [block for block in everything if block.fields.get("event") == "status"]
    states = [(block.data["status"], block.data["progress"]) for block in received]
    assert states == [
        ("PENDING", 0),
        ("INITIALIZING", 5),
        ("GENERATING", 10),
        ("GENERATING", 30),
        ("GENERATING", 50),
        ("GENERATING", 70),
        ("GENERATING", 90),
        ("SAVING", 95),
        ("COMPLETED", 100),
    ]
    ids = [block.id for block in received]
    assert ids == sorted(set(ids)), "ids must strictly increase"
    status = api.get(f"/api/images/status/{job_id}").json()
    result = api.get(f"/api/images/result/{job_id}").json()
    last = received[-1].data
    assert {key: last[key] for key in status} == status
    assert last["images"] == result["images"] and len(last["images"]) == 4
    assert last["metadata"] == result["metadata"]
    assert all(set(block.data) >= {"job_id", "message", "created_at", "updated_at"} for block in received)


def test_last_event_id_resumes_without_repeats(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1000)
    job_id = create_job(api, num_images=2)
    with open_stream(job_id) as stream:
        before, _ = _wait_for_status(stream, "GENERATING")
    resumed_at = before[-1].id
    after = events(open_stream(job_id, headers={"Last-Event-ID": str(resumed_at)}))
    assert after and all(block.id > resumed_at for block in after)
    assert [block.data["status"] for block in after][-1] == "COMPLETED"
    ids = [block.id for block in before + after]
    assert len(ids) == len(set(ids))
    # Only the current state is kept: resuming a finished job sends its terminal
    # event alone; the query parameter works like the header.
    assert [b.id for b in events(open_stream(job_id, last_event_id=str(resumed_at)))] == [after[-1].id]
    # A finished job's stream is its terminal event and the end ...
    (final,) = events(open_stream(job_id))
    assert final.data["status"] == "COMPLETED" and final.id == after[-1].id
    # HEAD: the headers, no stream.
    head = requests.head(f"{API_BASE_URL}/api/images/events/{job_id}", timeout=10)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Type"].startswith("text/event-stream")
    # ... and once that was seen, 204: EventSource stops reconnecting.
    seen_all = requests.get(
        f"{API_BASE_URL}/api/images/events/{job_id}", headers={"Last-Event-ID": str(final.id)}, timeout=10
    )
    assert (seen_all.status_code, seen_all.content) == (204, b"")


def test_bad_last_event_id_and_unknown_jobs(api: Any) -> None:
    job_id = create_job(api)
    for value in ("abc", "-1", "1.5", "١٢".encode(), "9" * 21):
        response = requests.get(
            f"{API_BASE_URL}/api/images/events/{job_id}", headers={"Last-Event-ID": value}, timeout=10
        )
        assert response.status_code == 400, value
        assert response.json()["error"] == "Last-Event-ID invalide (identifiant d'événement attendu)"
    for unknown in ("img_doesnotexist00", "nope", "img_" + "a" * 40):
        response = requests.get(f"{API_BASE_URL}/api/images/events/{unknown}", timeout=10)
        assert (response.status_code, response.json()["error"]) == (404, "Tâche introuvable")
    api.wait_for_job(job_id)


def test_another_owners_stream_is_refused(api: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    alice, bob = make_key("alice-sse"), make_key("bob-sse")
    job_id = create_job(api, headers=alice)
    alice_key = alice["Authorization"].split(" ", 1)[1]
    for caller in (bob, {}, {"X-API-Key": bob["Authorization"].split(" ", 1)[1]}):
        response = open_stream(job_id, headers=caller)
        assert (response.status_code, response.json()["error"]) == (404, "Tâche introuvable")
    # EventSource cannot send headers: the key may come as ?api_key= on this route.
    assert events(open_stream(job_id, api_key=alice_key))[-1].data["status"] == "COMPLETED"
    assert events(open_stream(job_id, headers=alice))[-1].data["status"] == "COMPLETED"
    bad = open_stream(job_id, api_key="igk_not_a_real_key")
    assert (bad.status_code, bad.json()["error"]) == (401, "Clé API invalide")
    both = open_stream(job_id, headers={"X-API-Key": alice_key}, api_key=alice_key)
    assert both.status_code == 400
    # Only this route reads the query parameter.
    status = api.get(f"/api/images/status/{job_id}", params={"api_key": alice_key})
    assert status.status_code == 404


def test_heartbeat_cap_and_reconnection(stack: Stack, api: Any, standin: Any) -> None:
    standin.configure(latency_ms=5000)
    job_id = create_job(api)
    env = stack.env | {"SSE_HEARTBEAT_SECONDS": "1", "SSE_MAX_SECONDS": "3"}
    with side_api(env) as base:
        started = time.monotonic()
        with open_stream(job_id, base) as stream:
            first_connection = list(blocks(stream))
        elapsed = time.monotonic() - started
        assert 2.5 <= elapsed < 6, elapsed
        statuses = [block.data["status"] for block in first_connection if "data" in block.fields]
        assert statuses and "COMPLETED" not in statuses
        keepalives = [block for block in first_connection if block.comments == ["keepalive"]]
        assert len(keepalives) >= 1 and all(not block.fields for block in keepalives)
        # What EventSource does: reconnect with the last id until the terminal event.
        received = [block for block in first_connection if "id" in block.fields]
        for _ in range(5):
            more = events(open_stream(job_id, base, headers={"Last-Event-ID": str(received[-1].id)}))
            received += more
            if received[-1].data["status"] == "COMPLETED":
                break
    ids = [block.id for block in received]
    assert ids == sorted(set(ids))
    assert [block.data["status"] for block in received][-1] == "COMPLETED"
    order = [STATUS_ORDER.index(block.data["status"]) for block in received]
    assert order == sorted(order)


def test_open_streams_leave_the_api_responsive(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=3000)
    job_id = create_job(api)

    def follow() -> list[str]:
        return [block.data["status"] for block in events(open_stream(job_id))]

    with ThreadPoolExecutor(5) as pool:
        streams = [pool.submit(follow) for _ in range(5)]
        time.sleep(1)  # all five are open and waiting
        assert not any(stream.done() for stream in streams)
        timings = []
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(f"{API_BASE_URL}/health", timeout=5).status_code == 200
            timings.append(time.monotonic() - started)
        assert max(timings) < 0.5, timings
        assert all(stream.result(timeout=30)[-1] == "COMPLETED" for stream in streams)


def test_a_client_that_leaves_releases_its_listener(stack: Stack, api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1000)
    job_id = create_job(api, num_images=3)
    with open_stream(job_id) as stream:
        # GENERATING lasts at least the model's second; INITIALIZING may be over before the
        # stream opens on a loaded machine (the stream starts from the current state).
        _wait_for_status(stream, "GENERATING")
    api.wait_for_job(job_id)
    log = stack.log_path("api")
    deadline = time.monotonic() + 10
    wanted = '"ending": "client gone"'
    while not any(job_id in line and wanted in line for line in log.read_text().splitlines()):
        assert time.monotonic() < deadline, "the stream of a departed client was not closed"
        time.sleep(0.2)
