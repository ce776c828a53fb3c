"""The Eventarc relay without the stack: the production form of the emulator's events, and
delivery (order per document, retries with backoff, the retry window) to loopback receivers."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google.events.cloud.firestore_v1 import DocumentEventData

from emulator.eventarc_relay import Relay, RetryPolicy, serve, to_eventarc
from tests.firestore_events import Version, emulator_request
from tests.loopback import LoopbackServer, QuietHandler, Receiver

# What the Firestore emulator POSTed (captured on this machine) for
# ref.update({"progress": 30, "images.`1`": {"format": "PNG"}}) of image_jobs/img_captured01.
CAPTURED_HEADERS = {
    "ce-specversion": "1.0",
    "ce-type": "google.cloud.firestore.document.v1.written",
    "ce-source": "//firestore.googleapis.com/projects/projects/imagegen-local/databases/(default)",
    "ce-id": "81454b24-9161-4c72-95ac-da254d593795",
    "ce-subject": "documents/image_jobs/img_captured01",
    "ce-time": "2026-12-01T17:50:10Z",
    "ce-datacontenttype": "application/protobuf",
    "ce-dataschema": "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto",
    "ce-location": "us-central1",
    "ce-project": "imagegen-local",
    "ce-database": "(default)",
    "ce-namespace": "(default)",
    "ce-document": "image_jobs/img_captured01",
    "Content-Type": "application/protobuf",
}
CAPTURED_BODY = (
    b"Cr0BCk9wcm9qZWN0cy9pbWFnZWdlbi1sb2NhbC9kYXRhYmFzZXMvKGRlZmF1bHQpL2RvY3VtZW50cy9pbWFnZV9qb2JzL2ltZ19jYXB0dXJl"
    b"ZDAxEhcKBnN0YXR1cxINigEKR0VORVJBVElORxInCgZpbWFnZXMSHTIbChkKATESFDISChAKBmZvcm1hdBIGigEDUE5HEg4KCHByb2dyZXNz"
    b"EgIQHhoLCNKRvNgGEMiW1E4iCwjSkbzYBhCg2+RVEqIBCk9wcm9qZWN0cy9pbWFnZWdlbi1sb2NhbC9kYXRhYmFzZXMvKGRlZmF1bHQpL2Rv"
    b"Y3VtZW50cy9pbWFnZV9qb2JzL2ltZ19jYXB0dXJlZDAxEg4KCHByb2dyZXNzEgIQChIXCgZzdGF0dXMSDYoBCkdFTkVSQVRJTkcSDAoGaW1h"
    b"Z2VzEgIyABoLCNKRvNgGEMiW1E4iCwjSkbzYBhDIltROGgA="
)
T0 = datetime(2026, 12, 1, 17, 50, 10, 123456, tzinfo=UTC)
TRIGGER = "image_jobs-written"
FAST = RetryPolicy(min_backoff=0.05, max_backoff=0.2, window=5.0)


def parsed(body: bytes) -> DocumentEventData:
    return DocumentEventData.deserialize(body)


# --------------------------------------------------------------------------- the production form


def test_captured_emulator_event_becomes_eventarcs() -> None:
    event = to_eventarc(CAPTURED_HEADERS, CAPTURED_BODY)
    data = DocumentEventData.pb(parsed(event.body))
    assert event.headers == {
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": "//firestore.googleapis.com/projects/imagegen-local/databases/(default)",
        "ce-id": "81454b24-9161-4c72-95ac-da254d593795",
        "ce-subject": "documents/image_jobs/img_captured01",
        "ce-time": data.value.update_time.ToJsonString(),
        "ce-dataschema": CAPTURED_HEADERS["ce-dataschema"],
        "ce-location": "us-central1",
        "ce-project": "imagegen-local",
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "ce-document": "image_jobs/img_captured01",
        "content-type": "application/protobuf",
    }
    assert event.headers["ce-time"].startswith("2026-12-01T17:50:10.") and len(event.headers["ce-time"]) == 27
    assert data.value.fields["progress"].integer_value == 30
    assert data.old_value.fields["progress"].integer_value == 10
    assert data.value.fields["images"].map_value.fields["1"].map_value.fields["format"].string_value == "PNG"
    assert list(data.update_mask.field_paths) == ["images", "progress"]  # the emulator sent an empty mask


def test_create_and_delete_carry_no_update_mask() -> None:
    created = Version("img_x", {"status": "PENDING"}, T0, T0)
    headers, body = emulator_request(None, created, project="p", collection="image_jobs")
    event = to_eventarc(headers, body)
    assert not DocumentEventData.pb(parsed(event.body)).HasField("update_mask")
    assert event.headers["ce-time"] == "2026-12-01T17:50:10.123456Z"

    headers, body = emulator_request(created, None, project="p", collection="image_jobs", time=T0)
    deleted_at = T0 + timedelta(seconds=1)
    event = to_eventarc(headers, body, received_at=deleted_at)
    data = DocumentEventData.pb(parsed(event.body))
    assert not data.HasField("update_mask") and not data.HasField("value") and data.HasField("old_value")
    assert event.headers["ce-time"] == "2026-12-01T17:50:11.123456Z"  # when the relay got it


def test_not_a_firestore_event_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        to_eventarc(CAPTURED_HEADERS, b"\xff\xfe not base64")
    with pytest.raises(ValueError, match="ce-id"):
        to_eventarc({"ce-type": "x", "ce-project": "p", "ce-document": "d"}, CAPTURED_BODY)


def test_backoff_doubles_from_10_s_to_600_s_within_24_h() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]
    assert policy.deadline == 86400
    local = RetryPolicy(scale=0.01)
    assert (local.delay(1), local.delay(20), local.deadline) == (0.1, 6.0, 864.0)


# --------------------------------------------------------------------------- delivery


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@contextlib.contextmanager
def running_relay(target: str, policy: RetryPolicy = FAST) -> Iterator[tuple[Relay, str]]:
    """A relay routing ``TRIGGER`` to ``target``, and the URL the emulator would POST to."""
    relay = Relay({TRIGGER: target}, policy)
    server = serve(relay)
    try:
        yield relay, f"http://127.0.0.1:{server.server_port}/functions/projects/p/triggers/{TRIGGER}"
    finally:
        relay.close()
        server.shutdown()
        server.server_close()


def post_writes(url: str, doc_id: str, values: list[int]) -> list[str]:
    """POST, as the emulator does, one update event per value; returns their ce-ids."""
    ids = []
    previous = Version(doc_id, {"progress": 0}, T0, T0)
    for i, value in enumerate(values, 1):
        current = Version(doc_id, {"progress": value}, T0, T0 + timedelta(milliseconds=i))
        headers, body = emulator_request(previous, current, project="p", collection="image_jobs")
        answer = requests.post(url, headers=headers, data=body, timeout=5)
        assert answer.status_code == 200, answer.text
        ids.append(headers["ce-id"])
        previous = current
    return ids


def wait_for_drop(relay: Relay, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while relay.stats().get("dropped", 0) == 0:
        assert time.monotonic() < deadline, relay.stats()
        time.sleep(0.05)
    assert relay.stats()["dropped"] == 1


def progress(received: bytes) -> int:
    return int(parsed(received).value.fields["progress"].integer_value)


def test_retried_until_acknowledged_in_order_per_document(receiver: Receiver) -> None:
    target = receiver.url(500, 503)
    with running_relay(target) as (relay, url):
        ids = post_writes(url, "img_a", [10, 30, 50])
        hooks = receiver.wait(target, 5, timeout=10)
        assert [hook.headers["ce-id"] for hook in hooks] == [ids[0], ids[0], ids[0], ids[1], ids[2]]
        assert [progress(hook.body) for hook in hooks] == [10, 10, 10, 30, 50]
        time.sleep(0.1)
        assert relay.stats() == {"received": 3, "delivered": 3, "retried": 2, "pending": 0}


def test_a_retrying_document_does_not_hold_back_another(receiver: Receiver) -> None:
    slow, fast = receiver.url(*[500] * 10), receiver.url()
    with running_relay(slow) as (relay, url):
        post_writes(url, "img_slow", [10])
        relay.set_route("other", fast)
        post_writes(url.replace(TRIGGER, "other"), "img_fast", [10])
        assert len(receiver.wait(fast, 1, timeout=2)) == 1
        assert len(receiver.received(slow)) < 11  # still retrying


def test_dropped_after_the_retry_window(receiver: Receiver) -> None:
    target = receiver.url(*[500] * 100)
    with running_relay(target, RetryPolicy(min_backoff=0.05, max_backoff=0.1, window=0.5)) as (relay, url):
        post_writes(url, "img_b", [10])
        wait_for_drop(relay)
        attempts = len(receiver.received(target))
        assert 3 <= attempts <= 12  # 0.05 + 0.1 + 0.1 ... within 0.5 s
        time.sleep(0.3)
        assert len(receiver.received(target)) == attempts


def test_the_emulator_is_answered_before_the_target_is() -> None:
    release = threading.Event()

    class Stuck(QuietHandler):
        def do_POST(self) -> None:
            self.body()
            release.wait(10)
            self.reply(200)

    with LoopbackServer(Stuck) as stuck, running_relay(stuck.base_url + "/") as (relay, url):
        try:
            started = time.monotonic()
            post_writes(url, "img_c", [10, 30, 50])
            assert time.monotonic() - started < 1.0  # the emulator's 20 s timeout is never near
            assert relay.stats()["pending"] == 3
        finally:
            release.set()


def test_events_of_a_removed_route_are_dropped(receiver: Receiver) -> None:
    target = receiver.url()
    with running_relay(target) as (relay, url):
        relay.set_route(TRIGGER, None)
        post_writes(url, "img_d", [10])
        wait_for_drop(relay)
        assert receiver.received(target) == []


def test_many_documents_share_the_senders(receiver: Receiver) -> None:
    target = receiver.url()
    with running_relay(target) as (_relay, url):
        threads = threading.active_count()
        for n in range(60):
            post_writes(url, f"img_{n:03d}", [10])
        assert len(receiver.wait(target, 60, timeout=10)) == 60
        assert threading.active_count() <= threads + 2  # the HTTP front's handler threads, not one per document
