"""Webhook events: who receives them, their ids, payloads and signatures.

Shared by the Firestore trigger (``webhooks.trigger``), which decides what to
send, and the Cloud Tasks target (``webhooks.delivery``), which sends it.

Receiver: the job's own ``webhook.url`` (from ``webhook_url`` in the create
request) always wins and is used even when ``WEBHOOK_ENABLED`` is false: the
client asked for it explicitly. ``WEBHOOK_ENABLED`` only switches the global
``WEBHOOK_URL`` on. The two are signed apart: the operator's ``WEBHOOK_URL``
with ``WEBHOOK_SECRET`` (and, in production, the seed's ``X-Webhook-Secret``
header), a job's own URL with its owner's secret (``signing_secrets``) only. Events: the job's ``webhook.events`` if given, else
``completed``, ``failed`` and ``cancelled``; ``progress`` is opt-in.

Every event has a deterministic id (``msg_`` + 24 hex of a SHA-256 over job
id, kind and, for progress, the value): redelivered Firestore events map to
the same id, which names both the delivery record and the Cloud Task, and is
sent as ``webhook-id`` so receivers can deduplicate too.

Signing follows Standard Webhooks (``webhook-signature: v1,<base64 HMAC>``
over ``id.timestamp.body``, one ``v1,`` entry per key, space-separated). ``WEBHOOK_SECRET`` of the form ``whsec_<base64>``
is base64-decoded into the HMAC key, as Standard Webhooks libraries do; any
other string is the key as its raw UTF-8 bytes (the seed's secrets look like
``sorami-webhook-secret-key-2025``: the ``standardwebhooks`` package would
base64-decode those silently into other bytes). No secret, no signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

from imagegen.config import Settings, load_settings
from imagegen.models import JobStatus
from imagegen.results import iso, result_images, result_metadata

COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
PROGRESS = "progress"
DEFAULT_EVENTS = (COMPLETED, FAILED, CANCELLED)
DELIVERIES_COLLECTION = "webhook_deliveries"
USER_AGENT = "imagegen-webhooks/1.0"
SECRET_PREFIX = "whsec_"
OPERATOR = "operator"
"""``receiver`` of a delivery to the operator's ``WEBHOOK_URL``; a job's own URL is ``JOB``."""
JOB = "job"
EVENT_ID_PATTERN = re.compile(r"^msg_[0-9a-f]{24}$")

_TERMINAL_EVENTS = {
    JobStatus.COMPLETED.value: COMPLETED,
    JobStatus.FAILED.value: FAILED,
    JobStatus.CANCELLED.value: CANCELLED,
}


@dataclass(frozen=True)
class Target:
    """Where a job's webhooks go, which events it wants, and whose key signs them."""

    url: str
    events: tuple[str, ...]
    receiver: str  # OPERATOR or JOB


@dataclass(frozen=True)
class Event:
    """One webhook event a job write implies; ``progress`` only for progress events."""

    kind: str
    progress: int | None = None

    def event_id(self, job_id: str) -> str:
        key = f"{job_id}/{self.kind}" + ("" if self.progress is None else f"/{self.progress}")
        return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def target_for(job: dict[str, Any], settings: Settings) -> Target | None:
    """The job's receiver and events, or None when it gets no webhooks."""
    webhook = job.get("webhook") or {}
    events = tuple(webhook.get("events") or DEFAULT_EVENTS)
    if webhook.get("url"):
        return Target(webhook["url"], events, JOB)
    if settings.webhook_enabled and settings.webhook_url:
        return Target(settings.webhook_url, events, OPERATOR)
    return None


def _progress(job: dict[str, Any] | None) -> int:
    return int((job or {}).get("progress") or 0)


def implied_events(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Event]:
    """Events implied by one write of a job document (``None`` = absent).

    A terminal status is announced when the status changes to it; progress
    when the job is GENERATING and its progress went up (Eventarc delivers
    every write, so every progress value is announced).
    """
    if not new:
        return []
    status = new.get("status")
    if status in _TERMINAL_EVENTS and status != (old or {}).get("status"):
        return [Event(_TERMINAL_EVENTS[status])]
    if status == JobStatus.GENERATING.value and _progress(new) > _progress(old):
        return [Event(PROGRESS, _progress(new))]
    return []


def build_payload(job: dict[str, Any], event: Event, at: datetime, environment: str) -> dict[str, Any]:
    """The seed's payload for ``event`` (``cancelled`` shaped like ``failed``)."""
    job_id = job["job_id"]
    timestamp = iso(at)
    if event.kind == PROGRESS:
        return {
            "job_id": job_id,
            "status": "generating",
            "timestamp": timestamp,
            "progress": event.progress,
            "message": "Génération en cours...",
        }
    head = {"job_id": job_id, "status": event.kind, "timestamp": timestamp, "environment": environment}
    if event.kind == COMPLETED:
        data = {
            "job_id": job_id,
            "images": result_images(job),
            "metadata": result_metadata(job),
            "status": JobStatus.COMPLETED.value,
            "generated_at": timestamp,
        }
        if job.get("missing_images"):
            data["missing_images"] = job["missing_images"]
        return head | {"data": data}
    # Typed failure beside the seed's fields (jobs failed before error_code existed: internal).
    typed = {"error_code": job.get("error_code") or ("cancelled" if event.kind == CANCELLED else "internal")}
    if job.get("safety"):
        typed["safety"] = job["safety"]
    if event.kind == FAILED:
        errors = job.get("errors") or [job.get("message") or "Erreur inconnue"]
        return head | {"error_message": errors[0], "message": "Échec de la génération d'images"} | typed
    return head | {"message": "Génération d'images annulée"} | typed


def payload_text(payload: dict[str, Any]) -> str:
    """The exact body sent (and signed): compact JSON, UTF-8 characters kept."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def signing_key(secret: str) -> bytes:
    """HMAC key of ``WEBHOOK_SECRET``: ``whsec_<base64>`` decoded, else the raw UTF-8 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    encoded = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("WEBHOOK_SECRET whsec_… n'est pas du base64 valide") from exc
    if not key:
        raise ValueError("WEBHOOK_SECRET whsec_… est vide")
    return key


def signature_headers(event_id: str, body: str, keys: list[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; ``webhook-signature`` (one entry per key) only with keys."""
    headers = {"webhook-id": event_id, "webhook-timestamp": str(int(at.timestamp()))}
    if keys:
        headers["webhook-signature"] = " ".join(
            Webhook(signing_key(key)).sign(event_id, at, body) for key in keys
        )
    return headers


def delivery_path(job_id: str, event_id: str) -> str:
    """``{JOBS_COLLECTION}/{job_id}/webhook_deliveries/{event_id}``: one event's delivery record."""
    return f"{load_settings().jobs_collection}/{job_id}/{DELIVERIES_COLLECTION}/{event_id}"
