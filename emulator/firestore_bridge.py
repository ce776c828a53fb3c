"""Eventarc stand-in for the Firestore emulator, which emits no events.

Listens to one collection with a Firestore ``on_snapshot`` listener and, for
every document change, POSTs to ``--target`` the CloudEvent Eventarc would
send for ``google.cloud.firestore.document.v1.written``: binary mode
(``ce-*`` headers), body a serialized ``DocumentEventData`` protobuf
(``application/protobuf``) with the previous version it saw as ``old_value``.

Differences from Eventarc, both harmless to an idempotent trigger:

* a listener may coalesce quick successive writes into one change, so some
  intermediate versions (e.g. progress values) are never seen;
* on start it reports every existing document as created.

Events go out one at a time, in order, retried with backoff while the target
is unreachable or answers 429/5xx (the trigger may still be starting, or ask
for a retry as Eventarc would grant it). SIGTERM stops it cleanly.

Run: ``python -m emulator.firestore_bridge --project imagegen-local
--collection image_jobs --target http://127.0.0.1:9008/`` with
``FIRESTORE_EMULATOR_HOST`` set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
from google.events.cloud.firestore_v1 import DocumentEventData
from google.events.cloud.firestore_v1.types import ArrayValue, Document, DocumentMask, MapValue, Value

COMPONENT = "firestore-bridge"
EVENT_TYPE = "google.cloud.firestore.document.v1.written"
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/"
    "proto/google/events/cloud/firestore/v1/data.proto"
)
RETRY_DEADLINE_SECONDS = 120.0


def log(severity: str, message: str, **fields: Any) -> None:
    """One JSON line on stderr (a single write, so threads don't interleave)."""
    entry = {"severity": severity, "message": message, "component": COMPONENT, **fields}
    sys.stderr.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


@dataclass(frozen=True)
class Version:
    """One version of a document as the listener saw it."""

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


def _changed_fields(old: Version, new: Version) -> list[str]:
    keys = old.fields.keys() | new.fields.keys()
    return sorted(key for key in keys if old.fields.get(key, ...) != new.fields.get(key, ...))


def document_event(
    old: Version | None,
    new: Version | None,
    *,
    project: str,
    collection: str,
    database: str = "(default)",
    time: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent for one write.

    ``old`` is None for a create, ``new`` None for a delete; ``time`` is used
    for deletes (the write time is the new version's ``update_time`` otherwise).
    """
    current = new or old
    if current is None:
        raise ValueError("a write has an old or a new version")
    document = f"{collection}/{current.doc_id}"
    name = f"projects/{project}/databases/{database}/documents/{document}"
    at = new.update_time if new else (time or datetime.now(timezone.utc))
    data = DocumentEventData()
    if new:
        data.value = _document(name, new)
    if old:
        data.old_value = _document(name, old)
    if old and new:
        data.update_mask = DocumentMask(field_paths=_changed_fields(old, new))
    stamp = at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    headers = {
        "ce-specversion": "1.0",
        "ce-id": hashlib.sha256(f"{name}@{stamp}@{new is None}".encode()).hexdigest()[:32],
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/{database}",
        "ce-type": EVENT_TYPE,
        "ce-subject": f"documents/{document}",
        "ce-time": stamp,
        "ce-dataschema": DATA_SCHEMA,
        "ce-project": project,
        "ce-database": database,
        "ce-namespace": "(default)",
        "ce-document": document,
        "Content-Type": "application/protobuf",
    }
    return headers, DocumentEventData.serialize(data)


def post_event(
    client: httpx.Client, target: str, headers: dict[str, str], body: bytes, stop: threading.Event
) -> None:
    """POST until a final answer: retried on network errors, 429 and 5xx."""
    deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
    delay = 0.2
    event = {"ce_id": headers["ce-id"], "subject": headers["ce-subject"]}
    while True:
        try:
            status: int | str = client.post(target, headers=headers, content=body).status_code
        except httpx.HTTPError as exc:
            status = f"{type(exc).__name__}: {exc}"
        if isinstance(status, int) and status < 500 and status != 429:
            log("INFO" if status < 300 else "ERROR", "event posted", status=status, **event)
            return
        if stop.is_set() or time.monotonic() > deadline:
            log("ERROR", "event dropped", status=status, **event)
            return
        log("WARNING", "event not accepted, retrying", status=status, delay=delay, **event)
        stop.wait(delay)
        delay = min(delay * 2, 5.0)


class Bridge:
    """Listener callback (turns changes into events) plus the thread that sends them."""

    def __init__(self, project: str, database: str, collection: str, target: str) -> None:
        self.project = project
        self.database = database
        self.collection = collection
        self.target = target
        self.stop = threading.Event()
        self._seen: dict[str, Version] = {}
        self._outbox: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    def on_snapshot(self, _docs: Any, changes: Any, read_time: Any) -> None:
        for change in changes:
            snapshot = change.document
            removed = change.type.name == "REMOVED"
            old = self._seen.pop(snapshot.id, None) if removed else self._seen.get(snapshot.id)
            new = (
                None
                if removed
                else Version(snapshot.id, snapshot.to_dict() or {}, snapshot.create_time, snapshot.update_time)
            )
            if new:
                self._seen[snapshot.id] = new
            event = document_event(
                old,
                new,
                project=self.project,
                collection=self.collection,
                database=self.database,
                time=read_time,
            )
            self._outbox.put(event)

    def send_forever(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not (self.stop.is_set() and self._outbox.empty()):
                try:
                    headers, body = self._outbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                post_event(client, self.target, headers, body, self.stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Firestore emulator -> Eventarc-style CloudEvents.")
    parser.add_argument("--project", required=True)
    parser.add_argument("--database", default="(default)")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--target", required=True, help="URL of the CloudEvent function")
    args = parser.parse_args(argv)

    from google.cloud import firestore

    bridge = Bridge(args.project, args.database, args.collection, args.target)
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop.set())
    signal.signal(signal.SIGINT, lambda *_: bridge.stop.set())
    sender = threading.Thread(target=bridge.send_forever, name="sender")
    sender.start()
    client = firestore.Client(project=args.project, database=args.database)
    collection = client.collection(args.collection)
    watch = collection.on_snapshot(bridge.on_snapshot)
    log("INFO", "Firestore bridge listening", collection=args.collection, target=args.target)
    while not bridge.stop.wait(0.5):
        # The SDK ends a listen stream for good on some errors (an emulator
        # restart resets it with CANCELLED): listen again.
        if not watch.is_active:
            log("WARNING", "Firestore listener stopped; subscribing again")
            watch = collection.on_snapshot(bridge.on_snapshot)
    watch.unsubscribe()
    sender.join()
    log("INFO", "Firestore bridge stopped")


if __name__ == "__main__":
    main()
