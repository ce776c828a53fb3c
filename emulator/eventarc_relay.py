"""Eventarc for the Firestore emulator: its own trigger deliveries, relayed as production sends them.

The emulator jar gcloud ships, started with ``--functions_emulator=HOST:PORT`` and given a
trigger (``register_trigger``), POSTs one binary-mode CloudEvent per write of a matching
document, in commit order, to ``/functions/projects/{project}/triggers/{trigger_id}`` on
HOST:PORT. This relay listens there and answers at once: the emulator has one sender for
every trigger, never retries, and drops an event its receiver answers with a 5xx or holds
for 20 s. Each event is queued, then POSTed to its trigger's route (``--route ID=URL``) in
the form Eventarc delivers in production (``to_eventarc``):

* the body is the raw ``DocumentEventData`` protobuf (the emulator base64-encodes it), whose
  ``update_mask`` lists the changed top-level fields of an update and is absent otherwise
  (the emulator sends an empty mask with every write);
* ``ce-source`` is ``//firestore.googleapis.com/projects/{project}/databases/{database}``
  (the emulator writes ``projects/projects/...``); ``ce-time`` is the write's commit time
  (the new version's ``update_time``, to the microsecond; the emulator truncates to whole
  seconds); for a delete, whose commit time the event does not carry, the time the relay
  received it; ``Content-Type: application/protobuf`` carries the data content type (no
  ``ce-datacontenttype`` header, as the CloudEvents HTTP binding says);
* ``ce-id``, ``ce-type``, ``ce-subject``, ``ce-specversion``, ``ce-dataschema`` and the
  Firestore extensions ``ce-project``, ``ce-database``, ``ce-namespace``, ``ce-document``,
  ``ce-location`` pass through; a retried delivery keeps its ``ce-id``.

Delivery follows the trigger's ``retry_policy = "RETRY_POLICY_RETRY"`` (infra/functions.tf):
Eventarc (Pub/Sub push) redelivers any answer but 102/200/201/202/204, and any connection
error or timeout, with an exponential backoff from 10 s to 600 s, for 24 h, then drops the
event. Here every duration is multiplied by ``--time-scale`` (0.01 by default: 0.1 s to 6 s,
for 14.4 min). Events of one document go out one at a time, in order, a retried one holding
back the later ones (production does not promise any order; the trigger does not need one);
different documents go out in parallel, at most ``--concurrency`` POSTs at a time.

Control routes: ``GET /_relay/health``; ``GET /_relay/stats`` (received, delivered,
retried, dropped, pending); ``PUT /_relay/routes/{trigger_id}`` ``{"url": ...}`` and
``DELETE /_relay/routes/{trigger_id}`` (tests add probes; events of a trigger without a route
are acknowledged and dropped, as production has no such trigger).

Run: ``python -m emulator.eventarc_relay --port 9015 --route image_jobs-written=http://127.0.0.1:9008/``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import heapq
import http.client
import itertools
import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from google.events.cloud.firestore_v1 import DocumentEventData
from google.events.cloud.firestore_v1.types import DocumentMask
from google.protobuf.message import DecodeError

COMPONENT = "eventarc-relay"
HOST = "127.0.0.1"
EVENT_TYPE = "google.cloud.firestore.document.v1.written"
DEFAULT_DATABASE = "(default)"
_TRIGGER_PATH = re.compile(r"^/functions/projects/(?P<project>[^/]+)/triggers/(?P<trigger>[^/?]+)$")
_ROUTE_PATH = re.compile(r"^/_relay/routes/(?P<trigger>[^/?]+)$")
# Pub/Sub push acknowledges a message on these statuses only; every other answer is a nack.
ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
# Attributes the relay sets itself or drops; every other ce-* header passes through.
_REBUILT = {"ce-source", "ce-time", "ce-datacontenttype", "content-type"}


def log(severity: str, message: str, **fields: Any) -> None:
    """One JSON line on stderr (a single write, so threads don't interleave)."""
    entry = {"severity": severity, "message": message, "component": COMPONENT, **fields}
    sys.stderr.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- the event


@dataclass(frozen=True)
class Event:
    """One CloudEvent in Eventarc's production form: binary-mode headers and raw protobuf body."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["ce-id"]

    @property
    def document(self) -> str:
        return self.headers["ce-document"]


def _changed_fields(data: Any) -> list[str]:
    old, new = data.old_value.fields, data.value.fields
    keys = old.keys() | new.keys()
    return sorted(key for key in keys if key not in old or key not in new or old[key] != new[key])


def to_eventarc(headers: dict[str, str], body: bytes, received_at: datetime | None = None) -> Event:
    """The production form of one event as the Firestore emulator POSTs it.

    ``headers`` are the emulator's (any case); raises ``ValueError`` when the
    request is not a Firestore CloudEvent (missing attributes, body not base64
    protobuf).
    """
    attributes = {name.lower(): value for name, value in headers.items() if name.lower().startswith("ce-")}
    missing = {"ce-id", "ce-type", "ce-project", "ce-document"} - attributes.keys()
    if missing:
        raise ValueError(f"not a Firestore CloudEvent: no {', '.join(sorted(missing))}")
    try:
        message = DocumentEventData.pb(DocumentEventData.deserialize(base64.b64decode(body, validate=True)))
    except (binascii.Error, DecodeError) as exc:
        raise ValueError(f"body is not a base64 DocumentEventData: {exc}") from exc
    message.ClearField("update_mask")
    if message.HasField("value") and message.HasField("old_value"):
        message.update_mask.CopyFrom(DocumentMask.pb(DocumentMask(field_paths=_changed_fields(message))))
    if message.HasField("value"):
        at = message.value.update_time.ToJsonString()
    else:
        at = (received_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    database = attributes.get("ce-database", DEFAULT_DATABASE)
    out = {name: value for name, value in attributes.items() if name not in _REBUILT}
    out["ce-source"] = f"//firestore.googleapis.com/projects/{attributes['ce-project']}/databases/{database}"
    out["ce-time"] = at
    out["content-type"] = "application/protobuf"
    return Event(out, message.SerializeToString())


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class RetryPolicy:
    """Eventarc's (Pub/Sub push's) redelivery: backoff ``min_backoff`` doubling to ``max_backoff``
    within ``window`` seconds of the event's arrival, all scaled by ``scale``."""

    min_backoff: float = 10.0
    max_backoff: float = 600.0
    window: float = 24 * 3600.0
    scale: float = 1.0

    def delay(self, failures: int) -> float:
        """Seconds before the attempt that follows ``failures`` failed ones (1 or more)."""
        return min(self.min_backoff * 2 ** (failures - 1), self.max_backoff) * self.scale

    @property
    def deadline(self) -> float:
        return self.window * self.scale


@dataclass
class _Pending:
    trigger: str
    event: Event
    arrived: float  # monotonic
    failures: int = 0


class Relay:
    """Per-document FIFO lanes of events, served by ``concurrency`` sender threads.

    A lane is scheduled (in a heap, by due time) at most once: while its head event is being
    sent or waits out a backoff, the lane's later events wait, and other lanes go on.
    """

    def __init__(
        self, routes: dict[str, str], policy: RetryPolicy, concurrency: int = 4, timeout: float = 60.0
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._routes = dict(routes)
        self._changed = threading.Condition()
        self._lanes: dict[tuple[str, str], deque[_Pending]] = {}
        self._due: list[tuple[float, int, tuple[str, str]]] = []
        self._order = itertools.count()
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self._senders = [
            threading.Thread(target=self._send_forever, name=f"sender-{n}", daemon=True) for n in range(concurrency)
        ]
        for sender in self._senders:
            sender.start()

    # routes
    def route(self, trigger: str) -> str | None:
        with self._changed:
            return self._routes.get(trigger)

    def set_route(self, trigger: str, url: str | None) -> None:
        with self._changed:
            if url is None:
                self._routes.pop(trigger, None)
            else:
                self._routes[trigger] = url
        log("INFO", "route set" if url else "route removed", trigger=trigger, url=url)

    def stats(self) -> dict[str, int]:
        with self._changed:
            return {**self.counts, "pending": sum(len(lane) for lane in self._lanes.values())}

    # queueing
    def submit(self, trigger: str, event: Event) -> None:
        key = (trigger, event.document)
        with self._changed:
            self.counts["received"] += 1
            lane = self._lanes.setdefault(key, deque())
            lane.append(_Pending(trigger, event, time.monotonic()))
            if len(lane) == 1:
                self._schedule(key, time.monotonic())

    def close(self) -> None:
        """Stop the senders (each after its current attempt); events still queued are dropped."""
        self.stop.set()
        with self._changed:
            self._changed.notify_all()
        for sender in self._senders:
            sender.join(timeout=2.0)

    def _schedule(self, key: tuple[str, str], due: float) -> None:
        heapq.heappush(self._due, (due, next(self._order), key))
        self._changed.notify()

    def _next_due(self) -> tuple[str, str] | None:
        with self._changed:
            while not self.stop.is_set():
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    return heapq.heappop(self._due)[2]
                self._changed.wait(self._due[0][0] - now if self._due else None)
            return None

    def _send_forever(self) -> None:
        while (key := self._next_due()) is not None:
            with self._changed:
                item = self._lanes[key][0]
            retry_at = self._attempt(item)
            with self._changed:
                lane = self._lanes[key]
                if retry_at is None:
                    lane.popleft()
                if lane:
                    self._schedule(key, retry_at or time.monotonic())
                else:
                    del self._lanes[key]

    def _attempt(self, item: _Pending) -> float | None:
        """One delivery attempt: None when the event is done with (acknowledged or dropped),
        else the monotonic time of its next attempt."""
        event = item.event
        fields = {"trigger": item.trigger, "ce_id": event.id, "subject": event.headers.get("ce-subject")}
        url = self.route(item.trigger)
        if url is None:
            self._count("dropped")
            log("WARNING", "event dropped: its trigger has no route", **fields)
            return None
        status = self._post(url, event)
        if status in ACK_STATUSES:
            self._count("delivered")
            log("INFO", "event delivered", status=status, attempts=item.failures + 1, **fields)
            return None
        item.failures += 1
        delay = self.policy.delay(item.failures)
        retry_at = time.monotonic() + delay
        if retry_at - item.arrived > self.policy.deadline:
            self._count("dropped")
            log("ERROR", "event dropped after its retry window", status=status, attempts=item.failures, **fields)
            return None
        self._count("retried")
        log("WARNING", "event not acknowledged, retrying", status=status, delay=round(delay, 3), **fields)
        return retry_at

    def _post(self, url: str, event: Event) -> int | str:
        """The target's status, or what went wrong on the way. http.client keeps the header names
        as given: lowercase, as Eventarc sends them over HTTP/2 (urllib would capitalize them)."""
        target = urlsplit(url)
        connection = http.client.HTTPConnection(target.hostname or HOST, target.port or 80, timeout=self.timeout)
        try:
            connection.request("POST", target.path or "/", body=event.body, headers=event.headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out
            return f"{type(err).__name__}: {err}"
        finally:
            connection.close()

    def _count(self, name: str) -> None:
        with self._changed:
            self.counts[name] += 1


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], relay: Relay) -> None:
        super().__init__(address, _Handler)
        self.relay = relay


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see emulator/__init__.py
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: deliveries are logged by the relay."""

    def do_GET(self) -> None:
        if self.path == "/_relay/health":
            self._reply(200, {"status": "ok"})
        elif self.path == "/_relay/stats":
            self._reply(200, self.server.relay.stats())
        else:
            self._reply(404, {"error": f"GET {self.path} is not served by the relay"})

    def do_POST(self) -> None:
        received_at = datetime.now(UTC)
        body = self._body()
        match = _TRIGGER_PATH.match(self.path)
        if not match:
            self._reply(404, {"error": f"POST {self.path} is not a trigger path"})
            return
        try:
            event = to_eventarc(dict(self.headers.items()), body, received_at)
        except ValueError as exc:
            # A 4xx: the emulator logs it and moves on (retrying cannot fix it).
            log("ERROR", "undecodable event from the emulator", error=str(exc), path=self.path)
            self._reply(400, {"error": str(exc)})
            return
        self.server.relay.submit(match["trigger"], event)
        self._reply(200, {"queued": event.id})

    def do_PUT(self) -> None:
        match = _ROUTE_PATH.match(self.path)
        try:
            url = json.loads(self._body())["url"] if match else None
        except (ValueError, KeyError, TypeError):
            url = None
        if not match or not isinstance(url, str):
            self._reply(400, {"error": 'PUT /_relay/routes/{trigger_id} with {"url": "http://..."}'})
            return
        self.server.relay.set_route(match["trigger"], url)
        self._reply(200, {"trigger": match["trigger"], "url": url})

    def do_DELETE(self) -> None:
        match = _ROUTE_PATH.match(self.path)
        if not match:
            self._reply(404, {"error": f"DELETE {self.path} is not a route"})
            return
        self.server.relay.set_route(match["trigger"], None)
        self._reply(200, {"trigger": match["trigger"], "url": None})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(relay: Relay, host: str = HOST, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``relay`` from a daemon thread (``port=0``: a free port); ``shutdown()`` stops it."""
    server = _Server((host, port), relay)
    threading.Thread(target=server.serve_forever, name=COMPONENT, daemon=True).start()
    return server


# --------------------------------------------------------------------------- emulator side


def trigger_id(collection: str) -> str:
    """The id the stack registers for ``document.written`` on ``{collection}/{jobId}``."""
    return f"{collection}-written"


def register_trigger(
    firestore: str, project: str, trigger: str, document: str, database: str = DEFAULT_DATABASE, timeout: float = 5.0
) -> None:
    """Register ``document.written`` on ``document`` (a path pattern such as ``image_jobs/{jobId}``)
    with the Firestore emulator at ``firestore`` (``http://host:port``). Idempotent; the emulator
    forgets its triggers when it stops, so register again after every start."""
    body = {
        "eventType": EVENT_TYPE,
        "database": database,
        "namespace": DEFAULT_DATABASE,
        "document": {"value": document, "matchType": "PATH_PATTERN"},
    }
    request = urllib.request.Request(
        f"{firestore.rstrip('/')}/emulator/v1/projects/{project}/eventarcTrigger?eventarcTriggerId={trigger}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


# --------------------------------------------------------------------------- CLI


def _route_arg(text: str) -> tuple[str, str]:
    trigger, sep, url = text.partition("=")
    if not sep or not trigger or not url:
        raise argparse.ArgumentTypeError("expected TRIGGER_ID=URL")
    return trigger, url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Firestore emulator trigger deliveries -> Eventarc's CloudEvents.")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=9015)
    parser.add_argument("--route", type=_route_arg, action="append", default=[], metavar="TRIGGER_ID=URL")
    parser.add_argument("--time-scale", type=float, default=0.01, help="multiplies Eventarc's backoff and window")
    parser.add_argument("--concurrency", type=int, default=4, help="POSTs in flight at most")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one delivery attempt may take")
    args = parser.parse_args(argv)

    relay = Relay(dict(args.route), RetryPolicy(scale=args.time_scale), args.concurrency, args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop.set())
    signal.signal(signal.SIGINT, lambda *_: relay.stop.set())
    server = serve(relay, args.host, args.port)
    log("INFO", f"Eventarc relay listening on http://{args.host}:{server.server_port}", routes=dict(args.route),
        time_scale=args.time_scale)  # fmt: skip
    relay.stop.wait()
    server.shutdown()
    server.server_close()
    relay.close()
    log("INFO", "Eventarc relay stopped", **relay.stats())


if __name__ == "__main__":
    main()
