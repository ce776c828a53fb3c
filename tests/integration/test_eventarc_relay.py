"""The Firestore trigger path on the stack: emulator -> Eventarc relay -> receiver.

Probe triggers are registered with the stack's Firestore emulator (which keeps them until it
stops: each probe gets a fresh id, and its relay route is removed afterwards, so later events
of the probe are dropped by the relay) and routed by the relay to a loopback receiver, which
sees exactly what ``webhook_trigger`` sees.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from cloudevents.http import from_http
from google.events.cloud.firestore_v1 import DocumentEventData

from emulator.eventarc_relay import register_trigger
from emulator.stack import Stack
from imagegen.webhooks import trigger
from tests.loopback import Received, Receiver

PRODUCTION_ATTRIBUTES = {
    "ce-specversion", "ce-type", "ce-source", "ce-id", "ce-subject", "ce-time", "ce-dataschema",
    "ce-project", "ce-database", "ce-namespace", "ce-document", "ce-location",
}  # fmt: skip
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto"
)

Probe = Callable[..., str]


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def probe(stack: Stack, hooks: Receiver) -> Iterator[Probe]:
    """``probe(pattern, *answers)``: a trigger on documents matching ``pattern`` whose events the
    relay POSTs to a fresh receiver URL answering ``answers`` then 200; returns that URL."""
    routes: list[str] = []

    def watch(pattern: str, *answers: int) -> str:
        trigger_id = f"probe-{uuid.uuid4().hex[:12]}"
        url = hooks.url(*answers)
        requests.put(f"{stack.urls['relay']}/_relay/routes/{trigger_id}", json={"url": url}, timeout=5).raise_for_status()
        routes.append(trigger_id)
        register_trigger(stack.urls["firestore"], stack.project, trigger_id, pattern)
        return url

    try:
        yield watch
    finally:
        for trigger_id in routes:
            requests.delete(f"{stack.urls['relay']}/_relay/routes/{trigger_id}", timeout=5)


@pytest.fixture
def db(stack: Stack) -> Iterator[Any]:
    from google.cloud import firestore

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
        yield firestore.Client(project=stack.project)


def data_of(received: Received) -> Any:
    return DocumentEventData.pb(DocumentEventData.deserialize(received.body))


def fields(document: Any) -> dict[str, Any]:
    return {key: trigger.decode_value(value) for key, value in document.fields.items()}


def commit_time(write_result: Any) -> str:
    stamp: datetime = write_result.update_time
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_relay_sends_eventarcs_production_form(stack: Stack, probe: Probe, hooks: Receiver, db: Any) -> None:
    collection = f"relay_probe_{uuid.uuid4().hex[:8]}"
    url = probe(f"{collection}/{{docId}}")
    ref = db.collection(collection).document("doc1")
    created = ref.set({"status": "PENDING", "progress": 0})
    updated = ref.update({"progress": 30, "status": "GENERATING"})
    ref.delete()
    db.collection(collection).document("doc1").collection("sub").document("x").set({"a": 1})  # not matched
    create, update, delete = hooks.wait(url, 3, timeout=20)

    source = f"//firestore.googleapis.com/projects/{stack.project}/databases/(default)"
    for received in (create, update, delete):
        headers = {name.lower(): value for name, value in received.headers.items()}
        assert {name for name in headers if name.startswith("ce-")} == PRODUCTION_ATTRIBUTES
        assert headers["content-type"] == "application/protobuf"
        assert headers["ce-source"] == source
        assert headers["ce-type"] == "google.cloud.firestore.document.v1.written"
        assert headers["ce-subject"] == f"documents/{collection}/doc1"
        assert headers["ce-document"] == f"{collection}/doc1"
        assert (headers["ce-project"], headers["ce-database"], headers["ce-namespace"]) == (
            stack.project, "(default)", "(default)",
        )  # fmt: skip
        assert (headers["ce-specversion"], headers["ce-dataschema"]) == ("1.0", DATA_SCHEMA)
        assert headers["ce-location"]
        uuid.UUID(headers["ce-id"])
        # What functions-framework builds from the request, decoded by the trigger's own code.
        event = from_http(received.headers, received.body)
        assert trigger.event_data(event) == data_of(received)
    assert len({received.headers["ce-id"] for received in (create, update, delete)}) == 3
    # ce-time is each write's commit time, to the microsecond (the emulator sends whole seconds).
    assert create.headers["ce-time"] == commit_time(created)
    assert update.headers["ce-time"] == commit_time(updated)
    assert delete.headers["ce-time"] >= update.headers["ce-time"]

    name = f"projects/{stack.project}/databases/(default)/documents/{collection}/doc1"
    first, second, third = (data_of(received) for received in (create, update, delete))
    assert first.value.name == name and not first.HasField("old_value") and not first.HasField("update_mask")
    assert fields(first.value) == {"status": "PENDING", "progress": 0}
    assert fields(second.old_value) == {"status": "PENDING", "progress": 0}
    assert fields(second.value) == {"status": "GENERATING", "progress": 30}
    assert list(second.update_mask.field_paths) == ["progress", "status"]
    assert not third.HasField("value") and fields(third.old_value) == {"status": "GENERATING", "progress": 30}
    time.sleep(0.5)
    assert len(hooks.received(url)) == 3


def test_every_write_in_order_retried_until_acknowledged(probe: Probe, hooks: Receiver, db: Any) -> None:
    collection = f"relay_probe_{uuid.uuid4().hex[:8]}"
    url = probe(f"{collection}/{{docId}}", 500, 500)  # the first event is refused twice
    ref = db.collection(collection).document("doc")
    started = time.monotonic()
    ref.set({"n": 0})
    for n in range(1, 30):
        ref.update({"n": n})
    received = hooks.wait(url, 32, timeout=30)
    ids = [hook.headers["ce-id"] for hook in received]
    assert ids[0] == ids[1] == ids[2] and len(set(ids)) == 30  # redelivered with its own id, then each once
    assert [fields(data_of(hook).value)["n"] for hook in received] == [0, 0, 0, *range(1, 30)]
    assert time.monotonic() - started >= 0.3  # backoff 0.1 s then 0.2 s (Eventarc's 10 s, 20 s x 0.01)
    time.sleep(0.5)
    assert len(hooks.received(url)) == 32


def test_every_progress_value_is_announced(api: Any, standin: Any, probe: Probe, hooks: Receiver, db: Any) -> None:
    history_url = probe("image_jobs/{jobId}")
    webhook_url = hooks.url()
    resp = api.post(
        "/api/images/generate",
        json={
            "prompt": "Quatre montgolfières",
            "num_images": 4,
            "size": "512x512",
            "webhook_url": webhook_url,
            "webhook_events": ["progress", "completed"],
        },
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    webhooks = hooks.wait(webhook_url, 6, timeout=30)  # 5 progress values + completed

    # The job's write history, as its trigger saw it: every (old, new) pair.
    writes = [
        data_of(hook) for hook in hooks.received(history_url) if hook.headers["ce-document"] == f"image_jobs/{job_id}"
    ]
    went_through = [
        fields(write.value)["progress"]
        for write in writes
        if write.HasField("old_value")
        and fields(write.value)["status"] == "GENERATING"
        and fields(write.value)["progress"] > fields(write.old_value)["progress"]
    ]
    assert went_through == [10, 30, 50, 70, 90]
    payloads = [hook.json() for hook in webhooks]
    assert sorted(p["progress"] for p in payloads if p["status"] == "generating") == went_through
    assert [p["status"] for p in payloads].count("completed") == 1
    # The trigger scheduled them in the order of the writes.
    records = db.collection("image_jobs").document(job_id).collection("webhook_deliveries").get()
    scheduled = sorted((r.to_dict() for r in records if r.get("event") == "progress"), key=lambda r: r["created_at"])
    assert [json.loads(r["payload"])["progress"] for r in scheduled] == went_through


def test_events_wait_for_a_stopped_trigger_function(api: Any, standin: Any, stack: Stack, hooks: Receiver) -> None:
    url = hooks.url()
    stats = lambda: requests.get(f"{stack.urls['relay']}/_relay/stats", timeout=5).json()  # noqa: E731
    retried_before = stats().get("retried", 0)
    stack.kill("webhook_trigger")
    try:
        resp = api.post("/api/images/generate", json={"prompt": "Un phare éteint", "size": "512x512", "webhook_url": url})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        assert api.wait_for_job(job_id)["status"] == "COMPLETED"
        time.sleep(1)
        assert hooks.received(url) == []
        assert stats().get("retried", 0) > retried_before  # the relay is holding the job's events
    finally:
        stack.restart("webhook_trigger")
    [hook] = hooks.wait(url, 1, timeout=30)
    assert (hook.json()["job_id"], hook.json()["status"]) == (job_id, "completed")
