"""Firestore trigger: turn job writes into scheduled webhook deliveries.

Eventarc delivers ``google.cloud.firestore.document.v1.written`` for every
write of a job document, at least once, as a binary-mode CloudEvent whose
body is a serialized ``DocumentEventData`` (``application/protobuf``); the
JSON form is accepted too. Old and new versions are compared to find the
webhook events the write implies (``messages.implied_events``).

Each event is scheduled exactly once whatever the redeliveries:

1. ``create()`` the delivery record ``{job}/webhook_deliveries/{event_id}``
   holding the exact payload text; ``AlreadyExists`` means another delivery
   of this CloudEvent (or an equivalent write) got there first.
2. Enqueue a Cloud Task named after the event id (``AlreadyExists`` is
   success), then mark the record ``task_enqueued``.

A record found without ``task_enqueued`` lost its enqueue (crash or queue
error), so it is enqueued again; a queue error is raised so that Eventarc
retries the whole event. The task name keeps the queue from holding two.
Events that cannot be decoded are logged and dropped: retrying cannot fix them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent
from google.events.cloud.firestore_v1 import DocumentEventData
from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError

from imagegen import task_queue
from imagegen.clients import database
from imagegen.config import Settings, load_settings
from imagegen.job_store import utcnow
from imagegen.logs import fields, log_context
from imagegen.webhooks import messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One webhook to schedule: its record id, receiver and exact body."""

    job_id: str
    event_id: str
    event: str
    url: str
    receiver: str
    owner: str | None
    payload: str
    expires_at: datetime | None


def decode_value(value: Any) -> Any:
    """A Firestore ``Value`` protobuf as the Python value the SDK's ``to_dict`` gives."""
    kind = value.WhichOneof("value_type")
    if kind is None or kind == "null_value":
        return None
    if kind == "map_value":
        return {key: decode_value(item) for key, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [decode_value(item) for item in value.array_value.values]
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime(tzinfo=UTC)
    return getattr(value, kind)


def _document(data: Any, field: str) -> dict[str, Any] | None:
    if not data.HasField(field):
        return None
    return {key: decode_value(value) for key, value in getattr(data, field).fields.items()}


def event_data(event: CloudEvent) -> Any:
    """The event's ``DocumentEventData`` as a raw protobuf message."""
    data = event.get_data()
    content_type = str(event.get("datacontenttype") or "")
    if isinstance(data, (bytes, bytearray)) and "json" not in content_type:
        return DocumentEventData.pb(DocumentEventData.deserialize(bytes(data)))
    if isinstance(data, (bytes, bytearray)):
        data = data.decode()
    if not isinstance(data, str):
        data = json.dumps(data)
    return DocumentEventData.pb(DocumentEventData.from_json(data, ignore_unknown_fields=True))


def plan(data: Any, settings: Settings) -> list[Delivery]:
    """The webhook deliveries one ``DocumentEventData`` implies, payloads built."""
    old, new = _document(data, "old_value"), _document(data, "value")
    if not new:
        return []
    target = messages.target_for(new, settings)
    if target is None:
        return []
    job_id = data.value.name.rsplit("/", 1)[-1]
    # The write's own time: every redelivery of this event builds the same payload.
    at = data.value.update_time.ToDatetime(tzinfo=UTC)
    return [
        Delivery(
            job_id=job_id,
            event_id=item.event_id(job_id),
            event=item.kind,
            url=target.url,
            receiver=target.receiver,
            owner=new.get("owner"),
            payload=messages.payload_text(
                messages.build_payload(new | {"job_id": job_id}, item, at, settings.environment)
            ),
            expires_at=new.get("expires_at"),
        )
        for item in messages.implied_events(old, new)
        if item.kind in target.events
    ]


def schedule(delivery: Delivery, settings: Settings) -> None:
    """Create the delivery record once, then make sure its task is queued."""
    from imagegen.google_api.errors import AlreadyExists

    path = messages.delivery_path(delivery.job_id, delivery.event_id)
    record: dict[str, Any] = {
        "event_id": delivery.event_id,
        "event": delivery.event,
        "url": delivery.url,
        "receiver": delivery.receiver,
        "owner": delivery.owner,
        "payload": delivery.payload,
        "state": "pending",
        "task_enqueued": False,
        "attempts": 0,
        "attempt_log": [],
        "last_status_code": None,
        "last_error": None,
        "last_attempt_at": None,
        "delivered_at": None,
        "created_at": utcnow(),
        "expires_at": delivery.expires_at,
    }
    log = fields(event=delivery.event, event_id=delivery.event_id)
    try:
        database().create(path, record)
    except AlreadyExists:
        if (database().get(path).data or {}).get("task_enqueued"):
            logger.info("webhook already scheduled", **log)
            return
        logger.warning("webhook record without task: enqueuing again", **log)
    task_queue.enqueue_json(
        settings.webhook_tasks_queue,
        settings.webhook_delivery_url,
        {"job_id": delivery.job_id, "event_id": delivery.event_id},
        task_id=delivery.event_id,
    )
    database().update(path, {"task_enqueued": True})
    logger.info("webhook scheduled", **log)


def handle_cloud_event(event: CloudEvent) -> None:
    """Entry point of ``webhook_trigger``; raises only when a retry can help."""
    try:
        data = event_data(event)
    except (DecodeError, ParseError, ValueError, TypeError):  # retrying cannot fix it: ack, loudly
        logger.exception("undecodable Firestore event dropped", **fields(ce_id=event.get("id")))
        return
    settings = load_settings()
    for delivery in plan(data, settings):
        with log_context(job_id=delivery.job_id):
            schedule(delivery, settings)
