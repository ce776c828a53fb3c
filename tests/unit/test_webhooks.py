"""Webhooks without the stack: payloads, signatures, CloudEvent decoding, rules.

The trigger is fed the exact bytes the Eventarc relay makes of the Firestore
emulator's events (``tests.firestore_events``), through the same ``cloudevents``
parsing functions-framework does, so the protobuf path is tested end to end in memory.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks
from cloudevents.http import from_http
from google.events.cloud.firestore_v1 import DocumentEventData

from imagegen.config import load_settings
from imagegen.webhooks import delivery, messages, signing_secrets, trigger
from tests.firestore_events import Version, document_event
from tests.tokens import emulator_oidc

JOB_ID = "img_unittest0001"
T0 = datetime(2025, 10, 21, 16, 44, 45, tzinfo=UTC)
SEED_IMAGE_KEYS = {"file_path", "url", "description", "format", "size_bytes", "dimensions"}
SEED_METADATA_KEYS = {
    "model_name", "version", "generation_time_seconds", "input_tokens", "output_size_bytes", "timestamp",
}


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A known environment; tests change it with ``monkeypatch`` then ``load_settings.cache_clear()``."""
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_ENABLED", "ENVIRONMENT", "TASKS_SERVICE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGE_URL_MODE", "api")
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()


def job(status: str, progress: int, **extra: Any) -> dict[str, Any]:
    base = {
        "job_id": JOB_ID,
        "owner": "key:alice",
        "status": status,
        "message": "",
        "progress": progress,
        "errors": [],
        "webhook": {"url": "https://receiver.example/hook", "events": None},
        "images": {},
        "metadata": None,
        "expires_at": T0 + timedelta(days=30),
    }
    return base | extra


COMPLETED_JOB = job(
    "COMPLETED",
    100,
    images={
        "1": {
            "object_name": f"generated_images/{JOB_ID}/image_1.png",
            "format": "PNG",
            "content_type": "image/png",
            "size_bytes": 2048576,
            "dimensions": "1024x1024",
            "description": "Un magnifique coucher de soleil sur l'océan",
            "input_tokens": 45,
            "output_tokens": 1120,
            "model_version": "latest",
        }
    },
    metadata={
        "model_name": "gemini-2.0-flash-exp",
        "version": "latest",
        "generation_time_seconds": 12.5,
        "input_tokens": 45,
        "output_size_bytes": 2048576,
        "timestamp": "2025-10-21T16:45:00Z",
    },
)


def cloud_event(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Any:
    """What functions-framework hands the trigger for this write, as the relay delivers it."""
    versions = [
        Version(JOB_ID, fields, T0, T0 + timedelta(seconds=i)) if fields is not None else None
        for i, fields in enumerate((old, new))
    ]
    headers, body = document_event(*versions, project="imagegen-local", collection="image_jobs", time=T0)
    return from_http(headers, body)


def planned(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[trigger.Delivery]:
    return trigger.plan(trigger.event_data(cloud_event(old, new)), load_settings())


# --------------------------------------------------------------------------- payloads


def test_completed_payload_has_the_seed_shape() -> None:
    payload = messages.build_payload(COMPLETED_JOB, messages.Event("completed"), T0, "development")
    assert set(payload) == {"job_id", "status", "timestamp", "environment", "data"}
    assert payload["status"] == "completed"
    assert payload["timestamp"] == "2025-10-21T16:44:45Z"
    assert payload["environment"] == "development"
    data = payload["data"]
    assert set(data) == {"job_id", "images", "metadata", "status", "generated_at"}
    assert (data["job_id"], data["status"], data["generated_at"]) == (JOB_ID, "COMPLETED", "2025-10-21T16:44:45Z")
    assert [set(image) for image in data["images"]] == [SEED_IMAGE_KEYS]
    assert data["images"][0]["url"].endswith(f"/generated_images/{JOB_ID}/image_1.png")
    assert set(data["metadata"]) == SEED_METADATA_KEYS


def test_failed_payload_carries_the_first_error() -> None:
    failed = job("FAILED", 100, errors=["Clé API Google invalide", "autre"], error_code="invalid_api_key")
    payload = messages.build_payload(failed, messages.Event("failed"), T0, "production")
    assert payload == {
        "job_id": JOB_ID,
        "status": "failed",
        "timestamp": "2025-10-21T16:44:45Z",
        "environment": "production",
        "error_message": "Clé API Google invalide",
        "message": "Échec de la génération d'images",
        "error_code": "invalid_api_key",
    }


def test_failed_payload_carries_what_the_safety_filters_said() -> None:
    safety = {"block_reason": "SAFETY", "finish_reason": None, "ratings": []}
    blocked = job("FAILED", 100, errors=["Prompt bloqué"], error_code="content_blocked", safety=safety)
    payload = messages.build_payload(blocked, messages.Event("failed"), T0, "development")
    assert (payload["error_code"], payload["safety"]) == ("content_blocked", safety)
    # A job failed before error_code existed still gets one.
    older = messages.build_payload(job("FAILED", 100, errors=["x"]), messages.Event("failed"), T0, "development")
    assert older["error_code"] == "internal" and "safety" not in older


def test_progress_and_cancelled_payloads() -> None:
    progress = messages.build_payload(job("GENERATING", 50), messages.Event("progress", 50), T0, "development")
    assert progress == {
        "job_id": JOB_ID,
        "status": "generating",
        "timestamp": "2025-10-21T16:44:45Z",
        "progress": 50,
        "message": "Génération en cours...",
    }
    cancelled = messages.build_payload(job("CANCELLED", 40), messages.Event("cancelled"), T0, "development")
    assert set(cancelled) == {"job_id", "status", "timestamp", "environment", "message", "error_code"}
    assert (cancelled["status"], cancelled["error_code"]) == ("cancelled", "cancelled")


def test_event_ids_are_deterministic_and_distinct() -> None:
    ids = {
        messages.Event("completed").event_id(JOB_ID),
        messages.Event("failed").event_id(JOB_ID),
        messages.Event("progress", 40).event_id(JOB_ID),
        messages.Event("progress", 70).event_id(JOB_ID),
        messages.Event("completed").event_id("img_otherjob0001"),
    }
    assert len(ids) == 5
    assert messages.Event("progress", 40).event_id(JOB_ID) in ids
    assert all(messages.EVENT_ID_PATTERN.match(event_id) for event_id in ids)


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("secret", "receiver_key"),
    [
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("sorami-webhook-secret-key-2025", b"sorami-webhook-secret-key-2025"),
    ],
)
def test_signature_verifies_with_standardwebhooks(secret: str, receiver_key: str | bytes) -> None:
    body = messages.payload_text({"job_id": JOB_ID, "message": "Génération en cours..."})
    headers = messages.signature_headers("msg_0123456789abcdef01234567", body, [secret], datetime.now(UTC))
    assert headers["webhook-signature"].startswith("v1,")
    verified = standardwebhooks.Webhook(receiver_key).verify(body.encode(), headers)
    assert verified["message"] == "Génération en cours..."


def test_raw_secret_is_not_base64_decoded() -> None:
    """``Webhook("raw string")`` would base64-decode it: raw secrets are bytes keys."""
    secret = "sorami-webhook-secret-key-2025"
    body = "{}"
    headers = messages.signature_headers("msg_0123456789abcdef01234567", body, [secret], datetime.now(UTC))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)


def test_invalid_whsec_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        messages.signing_key("whsec_not*base64!")


def test_delivery_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"event_id": "msg_0123456789abcdef01234567", "payload": "{}", "receiver": messages.OPERATOR}
    at = datetime.now(UTC)
    headers = delivery.delivery_headers(record, load_settings(), at)
    assert "webhook-signature" not in headers and "X-Webhook-Secret" not in headers
    assert headers["webhook-id"] == record["event_id"]
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))

    configure(monkeypatch, WEBHOOK_SECRET="s3cret")
    assert "X-Webhook-Secret" not in delivery.delivery_headers(record, load_settings(), at)
    configure(monkeypatch, ENVIRONMENT="production")
    headers = delivery.delivery_headers(record, load_settings(), at)
    assert headers["X-Webhook-Secret"] == "s3cret"
    standardwebhooks.Webhook(b"s3cret").verify("{}", headers)


def test_a_jobs_own_receiver_never_gets_the_operators_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an owner to sign for (a record written by hand), it goes unsigned, never with
    the operator's key; with an owner, the key comes from ``signing_secrets`` (integration tests)."""
    configure(monkeypatch, WEBHOOK_SECRET="s3cret", ENVIRONMENT="production")
    for receiver in (messages.JOB, None):
        record = {"event_id": "msg_0123456789abcdef01234567", "payload": "{}", "receiver": receiver}
        headers = delivery.delivery_headers(record, load_settings(), datetime.now(UTC))
        assert "X-Webhook-Secret" not in headers and "webhook-signature" not in headers


def test_during_the_grace_period_both_keys_sign() -> None:
    at = datetime.now(UTC)
    old, new = "whsec_" + "A" * 43 + "=", "whsec_" + "B" * 43 + "="
    rotated = signing_secrets.OwnerSecret(new, at, at, old, at + timedelta(seconds=60))
    assert rotated.signing_secrets(at) == [new, old]
    assert rotated.signing_secrets(at + timedelta(seconds=61)) == [new]
    headers = messages.signature_headers("msg_0123456789abcdef01234567", "{}", rotated.signing_secrets(at), at)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        standardwebhooks.Webhook(key).verify("{}", headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "C" * 43 + "=").verify("{}", headers)


# --------------------------------------------------------------------------- CloudEvents -> deliveries


def test_protobuf_cloud_event_round_trip() -> None:
    event = cloud_event(job("SAVING", 95), COMPLETED_JOB)
    assert event["type"] == "google.cloud.firestore.document.v1.written"
    assert event["subject"] == f"documents/image_jobs/{JOB_ID}"
    data = trigger.event_data(event)
    assert "status" in data.update_mask.field_paths
    [delivery] = trigger.plan(data, load_settings())
    assert (delivery.job_id, delivery.event, delivery.url) == (JOB_ID, "completed", "https://receiver.example/hook")
    assert (delivery.receiver, delivery.owner) == (messages.JOB, "key:alice")
    assert delivery.event_id == messages.Event("completed").event_id(JOB_ID)
    payload = json.loads(delivery.payload)
    assert payload["data"]["metadata"]["input_tokens"] == 45
    assert payload["timestamp"] == "2025-10-21T16:44:46Z"  # the write's update_time


def test_json_cloud_event_is_accepted() -> None:
    protobuf_event = cloud_event(job("GENERATING", 60), job("FAILED", 100, errors=["Clé API Google invalide"]))
    text = DocumentEventData.to_json(DocumentEventData.deserialize(protobuf_event.get_data()))
    headers = {key: value for key, value in protobuf_event.get_attributes().items()}
    event = from_http({f"ce-{k}": str(v) for k, v in headers.items()} | {"Content-Type": "application/json"}, text)
    assert isinstance(event.get_data(), dict)
    [delivery] = trigger.plan(trigger.event_data(event), load_settings())
    assert json.loads(delivery.payload)["error_message"] == "Clé API Google invalide"


def test_values_decode_to_python() -> None:
    fields = {"s": "é", "i": 7, "f": 1.5, "b": True, "n": None, "t": T0, "m": {"a": [1, {"x": "y"}]}}
    event = cloud_event(None, job("PENDING", 0, extra=fields))
    new = trigger._document(trigger.event_data(event), "value")
    assert new["extra"] == fields


def test_undecodable_event_is_acked(caplog: pytest.LogCaptureFixture) -> None:
    headers, _ = document_event(None, Version(JOB_ID, {}, T0, T0), project="p", collection="image_jobs")
    trigger.handle_cloud_event(from_http(headers, b"\xff\xfenot a protobuf"))
    assert "undecodable Firestore event dropped" in caplog.text


# --------------------------------------------------------------------------- transition rules


def test_no_event_when_status_is_unchanged() -> None:
    assert planned(COMPLETED_JOB, COMPLETED_JOB | {"updated_at": T0}) == []
    assert planned(job("PENDING", 0), job("INITIALIZING", 5)) == []
    assert planned(COMPLETED_JOB, None) == []  # deletion (TTL)


def test_each_terminal_status_is_announced_once() -> None:
    for status, kind in (("COMPLETED", "completed"), ("FAILED", "failed"), ("CANCELLED", "cancelled")):
        new = COMPLETED_JOB | {"status": status}
        assert [d.event for d in planned(job("GENERATING", 50), new)] == [kind]
        assert planned(new, new) == []


def test_progress_only_when_increased_and_subscribed() -> None:
    hook = {"url": "https://receiver.example/hook", "events": ["progress", "completed"]}
    assert [d.event for d in planned(job("GENERATING", 10, webhook=hook), job("GENERATING", 40, webhook=hook))] == [
        "progress"
    ]
    assert planned(job("GENERATING", 40, webhook=hook), job("GENERATING", 40, webhook=hook)) == []
    assert planned(job("GENERATING", 10), job("GENERATING", 40)) == []  # default events: no progress
    only_progress = hook | {"events": ["progress"]}
    assert planned(job("SAVING", 95, webhook=only_progress), COMPLETED_JOB | {"webhook": only_progress}) == []


def test_per_job_url_wins_and_ignores_webhook_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    global_only = {"webhook": None}
    assert planned(job("GENERATING", 50), COMPLETED_JOB)[0].url == "https://receiver.example/hook"
    assert planned(job("GENERATING", 50, **global_only), COMPLETED_JOB | global_only) == []

    configure(monkeypatch, WEBHOOK_URL="https://global.example/hook")
    assert planned(job("GENERATING", 50, **global_only), COMPLETED_JOB | global_only) == []
    configure(monkeypatch, WEBHOOK_ENABLED="true")
    [to_operator] = planned(job("GENERATING", 50, **global_only), COMPLETED_JOB | global_only)
    assert (to_operator.url, to_operator.receiver) == ("https://global.example/hook", messages.OPERATOR)
    assert planned(job("GENERATING", 50), COMPLETED_JOB)[0].url == "https://receiver.example/hook"
    events_only = {"webhook": {"url": None, "events": ["failed"]}}
    assert planned(job("GENERATING", 50, **events_only), COMPLETED_JOB | events_only) == []


# --------------------------------------------------------------------------- delivery outcomes


@pytest.mark.parametrize(
    ("status", "state"),
    [(200, "delivered"), (204, "delivered"), (None, "retrying"), (408, "retrying"), (429, "retrying"),
     (500, "retrying"), (503, "retrying"), (301, "abandoned"), (400, "abandoned"), (404, "abandoned"),
     (410, "abandoned")],
)
def test_outcome_state(status: int | None, state: str) -> None:
    assert delivery.outcome_state(status) == state


def test_send_times_out_and_refused_connections_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, WEBHOOK_TIMEOUT_SECONDS="1", ALLOW_PRIVATE_IMAGE_URLS="true")
    record = {"event_id": "msg_0123456789abcdef01234567", "payload": "{}"}
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        attempt = delivery.send(record | {"url": url}, load_settings())
    assert (attempt.state, attempt.status_code) == ("retrying", None)
    assert "Timeout" in attempt.error
    attempt = delivery.send(record | {"url": url}, load_settings())  # now closed
    assert attempt.state == "retrying" and "Connect" in attempt.error


@pytest.mark.parametrize(
    ("url", "state", "error"),
    [("http://127.0.0.1:9/hook", "abandoned", "réseau privé ou local"),
     ("http://2852039166/latest", "abandoned", "réseau privé ou local"),
     ("http://metadata.google.internal./", "abandoned", "réseau privé ou local"),
     ("http://example.com:99999/hook", "abandoned", "URL invalide"),
     ("http://no-such-host.invalid/hook", "retrying", "hôte inconnu")],
)  # fmt: skip
def test_send_errors_are_recorded_never_raised(url: str, state: str, error: str) -> None:
    attempt = delivery.send({"event_id": "msg_0123456789abcdef01234567", "payload": "{}", "url": url}, load_settings())
    assert (attempt.state, attempt.status_code) == (state, None)
    assert error in attempt.error


def test_delivery_target_refuses_unknown_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    import flask

    app = flask.Flask(__name__)
    body = {"job_id": JOB_ID, "event_id": "msg_0123456789abcdef01234567"}
    malformed = {"job_id": "../x", "event_id": "msg_0123456789abcdef01234567"}
    with emulator_oidc(monkeypatch) as mint:
        with app.test_request_context("/", method="POST", json=body):
            assert delivery.handle_request(flask.request).status_code == 401
        token = mint(load_settings().webhook_delivery_url)
        with app.test_request_context("/", method="POST", json=malformed, headers={"Authorization": f"Bearer {token}"}):
            response = delivery.handle_request(flask.request)
    assert (response.status_code, response.get_json()) == (200, {"state": "dropped"})
