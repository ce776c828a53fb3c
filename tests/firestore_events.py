"""Firestore ``document.written`` CloudEvents for tests, built from Python values.

``document_event`` writes the request the Firestore emulator POSTs for one write (its
quirks included: base64 body, empty update mask, ``projects/projects/...`` source,
whole-second time) and returns what the relay (``emulator.eventarc_relay.to_eventarc``)
turns it into: the production form that ``webhook_trigger`` receives on the stack.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.events.cloud.firestore_v1 import DocumentEventData
from google.events.cloud.firestore_v1.types import ArrayValue, Document, DocumentMask, MapValue, Value

from emulator.eventarc_relay import EVENT_TYPE, to_eventarc

DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto"
)


@dataclass(frozen=True)
class Version:
    """One version of a document."""

    doc_id: str
    fields: dict[str, Any]
    create_time: datetime
    update_time: datetime


def to_value(value: Any) -> Value:
    """A Python value as the Firestore ``Value`` the SDK would have stored."""
    if value is None:
        return Value(null_value=0)
    if isinstance(value, bool):
        return Value(boolean_value=value)
    if isinstance(value, int):
        return Value(integer_value=value)
    if isinstance(value, float):
        return Value(double_value=value)
    if isinstance(value, str):
        return Value(string_value=value)
    if isinstance(value, datetime):
        return Value(timestamp_value=value)
    if isinstance(value, dict):
        return Value(map_value=MapValue(fields={key: to_value(item) for key, item in value.items()}))
    if isinstance(value, (list, tuple)):
        return Value(array_value=ArrayValue(values=[to_value(item) for item in value]))
    raise TypeError(f"unsupported Firestore value: {type(value).__name__}")


def _document(name: str, version: Version) -> Document:
    return Document(
        name=name,
        fields={key: to_value(item) for key, item in version.fields.items()},
        create_time=version.create_time,
        update_time=version.update_time,
    )


def emulator_request(
    old: Version | None,
    new: Version | None,
    *,
    project: str,
    collection: str,
    database: str = "(default)",
    time: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the emulator's POST for one write (``old`` None: a create; ``new`` None: a delete)."""
    current = new or old
    if current is None:
        raise ValueError("a write has an old or a new version")
    document = f"{collection}/{current.doc_id}"
    name = f"projects/{project}/databases/{database}/documents/{document}"
    data = DocumentEventData(update_mask=DocumentMask())
    if new:
        data.value = _document(name, new)
    if old:
        data.old_value = _document(name, old)
    at = new.update_time if new else (time or datetime.now(UTC))
    headers = {
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": f"//firestore.googleapis.com/projects/projects/{project}/databases/{database}",
        "ce-id": str(uuid.uuid4()),
        "ce-subject": f"documents/{document}",
        "ce-time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ce-datacontenttype": "application/protobuf",
        "ce-dataschema": DATA_SCHEMA,
        "ce-location": "us-central1",
        "ce-project": project,
        "ce-database": database,
        "ce-namespace": "(default)",
        "ce-document": document,
        "Content-Type": "application/protobuf",
    }
    return headers, base64.b64encode(DocumentEventData.serialize(data))


def document_event(old: Version | None, new: Version | None, **where: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of the CloudEvent ``webhook_trigger`` receives for one write
    (``where``: ``emulator_request``'s keywords)."""
    headers, body = emulator_request(old, new, **where)
    event = to_eventarc(headers, body, received_at=where.get("time"))
    return event.headers, event.body
