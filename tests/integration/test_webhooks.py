"""Webhooks end to end on the local stack: API -> worker -> Firestore -> Eventarc relay
-> webhook_trigger -> Cloud Tasks -> webhook_delivery -> a loopback receiver.

Jobs name their receiver with a per-job ``webhook_url`` (the stack keeps
``WEBHOOK_ENABLED=false``); the global ``WEBHOOK_URL`` rules are exercised on
a second ``webhook_trigger`` process this module starts with its own env.
Per-job URLs are signed with their owner's secret (``GET /api/webhooks/secret``),
never the operator's ``WEBHOOK_SECRET``; production's headers are checked in
``test_production_webhooks``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import standardwebhooks

from emulator.stack import HOST, Stack, free_port, function_argv, tcp_answers
from imagegen.webhooks import messages
from tests.firestore_events import Version, document_event
from tests.loopback import Received, Receiver
from tests.tokens import cloud_tasks_token

SEED_COMPLETED_KEYS = {"job_id", "status", "timestamp", "environment", "data"}
SEED_DATA_KEYS = {"job_id", "images", "metadata", "status", "generated_at"}
SEED_FAILED_KEYS = {"job_id", "status", "timestamp", "environment", "error_message", "message"}
SEED_PROGRESS_KEYS = {"job_id", "status", "timestamp", "progress", "message"}



@pytest.fixture(scope="module")
def firestore_db(stack: Stack) -> Iterator[Any]:
    from google.cloud import firestore

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
        yield firestore.Client(project=stack.project)


@pytest.fixture(scope="module")
def secret(stack: Stack) -> str:
    """The signing secret of the jobs' owner (anonymous here): per-job URLs are signed with it."""
    response = requests.get(f"{stack.urls['api']}/api/webhooks/secret", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["secret"]


def create_job(api: Any, prompt: str, **fields: Any) -> str:
    body = {"prompt": prompt, "num_images": 1, "size": "512x512"} | fields
    resp = api.post("/api/images/generate", json=body)
    assert resp.status_code in (200, 201, 202), resp.text
    return resp.json()["job_id"]


def verified(received: Received, secret: str) -> dict[str, Any]:
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"].startswith("imagegen-webhooks/")
    assert "X-Webhook-Secret" not in received.headers  # development
    return standardwebhooks.Webhook(secret).verify(received.body, received.headers)


def record_ref(db: Any, job_id: str, event_id: str) -> Any:
    return db.collection("image_jobs").document(job_id).collection("webhook_deliveries").document(event_id)


def delivery_record(db: Any, job_id: str, event_id: str, timeout: float = 10) -> dict[str, Any]:
    """The delivery record once its last attempt is recorded (it is written after the send)."""
    ref = record_ref(db, job_id, event_id)
    deadline = time.monotonic() + timeout
    while (record := ref.get().to_dict())["state"] in ("pending", "sending") and time.monotonic() < deadline:
        time.sleep(0.1)
    return record


def deliver_webhook(stack: Stack, job_id: str, event_id: str) -> requests.Response:
    """POST a delivery task to ``webhook_delivery`` as Cloud Tasks would, OIDC token included."""
    target = stack.env["WEBHOOK_DELIVERY_URL"]
    return requests.post(
        target,
        json={"job_id": job_id, "event_id": event_id},
        headers={"Authorization": f"Bearer {cloud_tasks_token(stack, target)}"},
        timeout=30,
    )


def test_completed_webhook_has_the_seed_shape_and_a_valid_signature(
    api: Any, standin: Any, receiver: Receiver, secret: str, firestore_db: Any
) -> None:
    url = receiver.url()
    job_id = create_job(api, "Un phare sous la pluie", webhook_url=url)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    [hook] = receiver.wait(url, 1)
    payload = verified(hook, secret)
    assert set(payload) == SEED_COMPLETED_KEYS
    assert (payload["job_id"], payload["status"], payload["environment"]) == (job_id, "completed", "development")
    assert payload["timestamp"].endswith("Z")
    assert set(payload["data"]) == SEED_DATA_KEYS
    assert payload["data"]["status"] == "COMPLETED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert payload["data"]["images"] == result["images"]
    assert payload["data"]["metadata"] == result["metadata"]
    record = delivery_record(firestore_db, job_id, hook.headers["webhook-id"])
    assert (record["state"], record["attempts"], record["event"]) == ("delivered", 1, "completed")
    assert record["payload"].encode() == hook.body
    time.sleep(1)
    assert len(receiver.received(url)) == 1


def test_failed_webhook(api: Any, standin: Any, receiver: Receiver, secret: str) -> None:
    marker = f"webhook-failed-{uuid.uuid4().hex[:8]}"
    standin.configure(faults=[{"kind": "invalid_key", "match": marker, "times": None}])
    url = receiver.url()
    job_id = create_job(api, f"Un chat {marker}", webhook_url=url, webhook_events=["failed", "completed"])
    status = api.wait_for_job(job_id)
    assert status["status"] == "FAILED"
    [hook] = receiver.wait(url, 1)
    payload = verified(hook, secret)
    assert set(payload) == SEED_FAILED_KEYS | {"error_code"}  # the seed's keys, and the typed cause
    assert (payload["job_id"], payload["status"], payload["error_code"]) == (job_id, "failed", "invalid_api_key")
    assert payload["message"] == "Échec de la génération d'images"
    assert payload["error_message"] == status["errors"][0]


def test_cancelled_webhook_by_default(api: Any, standin: Any, receiver: Receiver, secret: str) -> None:
    standin.configure(latency_ms=1500)
    url = receiver.url()
    job_id = create_job(api, "Un orage à annuler", webhook_url=url, num_images=2)
    assert api.post(f"/api/images/cancel/{job_id}").status_code == 200
    [hook] = receiver.wait(url, 1)
    payload = verified(hook, secret)
    assert set(payload) == {"job_id", "status", "timestamp", "environment", "message", "error_code"}
    assert (payload["job_id"], payload["status"], payload["error_code"]) == (job_id, "cancelled", "cancelled")
    assert payload["message"] == "Génération d'images annulée"
    time.sleep(2)  # the worker stops on its own: no completed webhook follows
    assert len(receiver.received(url)) == 1


def test_progress_webhooks_when_subscribed(api: Any, standin: Any, receiver: Receiver, secret: str) -> None:
    standin.configure(latency_ms=1500)  # writes seconds apart (each one reaches the trigger anyway)
    url = receiver.url()
    job_id = create_job(api, "Une forêt de bambous", webhook_url=url, webhook_events=["progress", "completed"])
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    time.sleep(2)
    payloads = [verified(hook, secret) for hook in receiver.received(url)]
    progress = [p for p in payloads if p["status"] == "generating"]
    assert [p["status"] for p in payloads].count("completed") == 1
    assert len(progress) >= 2, payloads  # GENERATING starts, then the image is done
    for item in progress:
        assert set(item) == SEED_PROGRESS_KEYS
        assert item["message"] == "Génération en cours..." and 0 < item["progress"] < 100
    values = [p["progress"] for p in progress]
    assert len(set(values)) == len(values)


def test_receiver_errors_are_retried_with_the_same_id(
    api: Any, standin: Any, receiver: Receiver, secret: str, firestore_db: Any
) -> None:
    url = receiver.url(500, 500, 500)
    job_id = create_job(api, "Un bateau en papier", webhook_url=url)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    hooks = receiver.wait(url, 4)
    assert len({hook.headers["webhook-id"] for hook in hooks}) == 1
    assert len({hook.body for hook in hooks}) == 1
    for hook in hooks:
        verified(hook, secret)
    record = delivery_record(firestore_db, job_id, hooks[0].headers["webhook-id"])
    assert (record["state"], record["attempts"]) == ("delivered", 4)
    assert record["delivered_at"] is not None
    assert [entry["status_code"] for entry in record["attempt_log"]] == [500, 500, 500, 200]
    time.sleep(1)
    assert len(receiver.received(url)) == 4


def test_client_errors_are_not_retried(api: Any, standin: Any, receiver: Receiver, firestore_db: Any) -> None:
    url = receiver.url(404)
    job_id = create_job(api, "Une tasse de thé", webhook_url=url)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    [hook] = receiver.wait(url, 1)
    time.sleep(2)
    assert len(receiver.received(url)) == 1
    record = delivery_record(firestore_db, job_id, hook.headers["webhook-id"])
    assert (record["state"], record["attempts"], record["last_status_code"]) == ("abandoned", 1, 404)


def test_a_live_lease_keeps_a_concurrent_delivery_from_sending(
    stack: Stack, receiver: Receiver, firestore_db: Any
) -> None:
    url = receiver.url()
    job_id, event_id = f"img_{uuid.uuid4().hex[:16]}", f"msg_{uuid.uuid4().hex[:24]}"
    ref = record_ref(firestore_db, job_id, event_id)
    now = datetime.now(UTC)
    ref.set({
        "event_id": event_id, "event": "completed", "url": url, "payload": '{"job_id":"%s"}' % job_id,
        "state": "sending", "lease_expires_at": now + timedelta(seconds=60), "attempts": 0,
    })  # fmt: skip

    assert deliver_webhook(stack, job_id, event_id).status_code == 409
    ref.update({"lease_expires_at": now - timedelta(seconds=1)})  # the other sender died
    assert deliver_webhook(stack, job_id, event_id).status_code == 200
    assert deliver_webhook(stack, job_id, event_id).status_code == 200  # delivered: a no-op
    assert len(receiver.received(url)) == 1
    record = ref.get().to_dict()
    assert (record["state"], record["attempts"], record["lease_token"]) == ("delivered", 1, None)


@pytest.mark.parametrize(
    ("url", "error"),
    [("http://example.com:99999/hook", "URL invalide"), ("http://[::1/hook", "URL invalide")],
)
def test_an_unsendable_record_is_abandoned_with_its_error(
    stack: Stack, firestore_db: Any, url: str, error: str
) -> None:
    """A record the API could never have written (its URLs are checked at creation): one
    attempt, recorded with its error, and no retry loop."""
    job_id, event_id = f"img_{uuid.uuid4().hex[:16]}", f"msg_{uuid.uuid4().hex[:24]}"
    ref = record_ref(firestore_db, job_id, event_id)
    ref.set({"event_id": event_id, "event": "completed", "url": url, "payload": "{}", "state": "pending", "attempts": 0})
    response = deliver_webhook(stack, job_id, event_id)
    assert (response.status_code, response.json()["state"]) == (200, "abandoned")
    record = ref.get().to_dict()
    assert (record["state"], record["attempts"]) == ("abandoned", 1)
    assert error in record["last_error"] and error in record["attempt_log"][0]["error"]


def test_invalid_webhook_fields_are_refused(api: Any) -> None:
    for body in ({"webhook_url": "ftp://example.com/hook"}, {"webhook_events": ["bogus"]}):
        resp = api.post("/api/images/generate", json={"prompt": "Un chat"} | body)
        assert resp.status_code == 400, resp.text
        assert [d["field"] for d in resp.json()["details"]] == list(body)


# --------------------------------------------------------------------------- CloudEvents posted by hand


@pytest.fixture
def completed_job(api: Any, firestore_db: Any) -> dict[str, Any]:
    """A real completed job document, as Firestore holds it."""
    job_id = create_job(api, "Un moulin à vent")
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    return firestore_db.collection("image_jobs").document(job_id).get().to_dict()


def completion_event(job: dict[str, Any], **changes: Any) -> tuple[str, dict[str, str], bytes]:
    """A GENERATING -> COMPLETED CloudEvent for a copy of ``job`` under a fresh id."""
    job_id = f"img_{uuid.uuid4().hex[:16]}"
    new = job | {"job_id": job_id} | changes
    old = new | {"status": "GENERATING", "progress": 50}
    at = job["updated_at"]
    headers, body = document_event(
        Version(job_id, old, job["created_at"], at - timedelta(seconds=1)),
        Version(job_id, new, job["created_at"], at),
        project="imagegen-local",
        collection="image_jobs",
    )
    return job_id, headers, body


def test_duplicated_cloud_event_sends_once(
    stack: Stack, completed_job: dict[str, Any], receiver: Receiver, firestore_db: Any
) -> None:
    url = receiver.url()
    job_id, headers, body = completion_event(completed_job, webhook={"url": url, "events": None})
    trigger = stack.urls["webhook_trigger"] + "/"
    post = lambda: requests.post(trigger, headers=headers, data=body, timeout=30)  # noqa: E731
    assert post().status_code == 200
    concurrent = [threading.Thread(target=post) for _ in range(3)]
    for thread in concurrent:
        thread.start()
    for thread in concurrent:
        thread.join()
    assert post().status_code == 200
    [hook] = receiver.wait(url, 1)
    assert hook.json()["job_id"] == job_id
    time.sleep(2)
    assert len(receiver.received(url)) == 1
    record = delivery_record(firestore_db, job_id, hook.headers["webhook-id"])
    assert (record["attempts"], record["task_enqueued"]) == (1, True)


def test_a_record_whose_task_was_lost_is_enqueued_on_redelivery(
    stack: Stack, completed_job: dict[str, Any], receiver: Receiver, firestore_db: Any
) -> None:
    """As if the queue had failed after the record was created: Eventarc's retry finishes the job."""
    url = receiver.url()
    job_id, headers, body = completion_event(completed_job, webhook={"url": url, "events": None})
    event_id = messages.Event("completed").event_id(job_id)
    payload = '{"job_id":"%s","status":"completed","from":"the record"}' % job_id
    record_ref(firestore_db, job_id, event_id).create({
        "event_id": event_id, "event": "completed", "url": url, "payload": payload,
        "state": "pending", "task_enqueued": False, "attempts": 0,
    })  # fmt: skip
    assert requests.post(stack.urls["webhook_trigger"] + "/", headers=headers, data=body, timeout=30).ok
    [hook] = receiver.wait(url, 1)
    assert hook.body.decode() == payload  # the stored text, not a rebuilt payload
    record = delivery_record(firestore_db, job_id, event_id)
    assert (record["state"], record["task_enqueued"]) == ("delivered", True)


@pytest.fixture
def trigger_with(stack: Stack) -> Iterator[Any]:
    """``start(name, **env)`` runs another ``webhook_trigger`` on a free port with
    extra env and returns its URL; its log is ``webhook_trigger_<name>.log``."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, **env: str) -> str:
        port = free_port()
        argv = function_argv(stack.root, "webhook_trigger", port)
        log = open(stack.log_dir / f"webhook_trigger_{name}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            argv, cwd=stack.root, env=stack.env | env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        started.append(process)
        deadline = time.monotonic() + 30
        while not tcp_answers(port):
            assert process.poll() is None and time.monotonic() < deadline, "the extra trigger did not start"
            time.sleep(0.1)
        return f"http://{HOST}:{port}/"

    try:
        yield start
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)  # its own group: gunicorn and its workers
            process.wait(timeout=10)


@pytest.mark.parametrize("enabled", ["false", "true"])
def test_global_webhook_url_follows_webhook_enabled(
    trigger_with: Any, completed_job: dict[str, Any], receiver: Receiver, enabled: str
) -> None:
    global_url, job_url = receiver.url(), receiver.url()
    trigger = trigger_with(f"enabled_{enabled}", WEBHOOK_URL=global_url, WEBHOOK_ENABLED=enabled)
    for webhook, url in ((None, global_url), ({"url": job_url, "events": None}, job_url)):
        _, headers, body = completion_event(completed_job, webhook=webhook)
        assert requests.post(trigger, headers=headers, data=body, timeout=30).status_code == 200
    receiver.wait(job_url, 1)  # a per-job URL is used whatever WEBHOOK_ENABLED says
    if enabled == "true":
        assert receiver.wait(global_url, 1)[0].json()["status"] == "completed"
    else:
        time.sleep(1)
        assert receiver.received(global_url) == []
