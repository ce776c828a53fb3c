"""Cloud Tasks target: send one webhook, record the attempt, let the queue retry.

One task per webhook event (named by the event id), so each event is retried
on its own with the queue's exponential backoff (10 s doubling to 1 h, 25
attempts, 24 h) and a receiver that is down never delays other jobs.

Answers (Cloud Tasks retries anything but 2xx): receiver 2xx -> 200
(delivered); network error, timeout, 408, 429, 5xx or any other error while
sending -> 503, retried; any other status (3xx are not followed, 4xx) or an
address ``outbound`` refuses -> 200 and the record is ``abandoned``. A record already ``delivered``/``abandoned`` is a 200 no-op,
so a duplicated task sends nothing; so is a malformed task body (logged).

Before sending, the attempt takes a lease on the record in a transaction
(state ``sending``); a concurrent duplicate finding a live lease answers 409
and Cloud Tasks tries it later. Each attempt is then recorded in a second
transaction. The job document is never touched: its status does not depend
on its messages.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import flask
import httpx2

from imagegen import outbound, task_auth
from imagegen.clients import database
from imagegen.config import Settings, load_settings
from imagegen.http import error_response, json_response, request_context
from imagegen.job_store import utcnow
from imagegen.logs import fields, log_context
from imagegen.models import JOB_ID_PATTERN
from imagegen.webhooks import messages, signing_secrets

if TYPE_CHECKING:
    from imagegen.firestore.database import Transaction

logger = logging.getLogger(__name__)

RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"
FINAL_STATES = ("delivered", "abandoned")
ATTEMPT_LOG_SIZE = 20
_RETRYABLE_STATUSES = {408, 429}

State = Literal["delivered", "retrying", "abandoned"]


@dataclass(frozen=True)
class Lease:
    """``send``: this request may send; ``done``/``busy``/``missing``: it must not."""

    outcome: Literal["send", "done", "busy", "missing"]
    record: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    at: datetime
    status_code: int | None
    error: str | None
    state: State
    duration_ms: int


def lease_seconds(settings: Settings) -> int:
    """Longest one attempt can take: httpx applies the timeout to connect, write
    and read separately (the body is never read), plus a margin."""
    return 3 * settings.webhook_timeout_seconds + 5


def take_lease(path: str, token: str, settings: Settings) -> Lease:
    def take(transaction: Transaction) -> Lease:
        record = transaction.get(path).data
        if record is None:
            return Lease("missing", {})
        now = utcnow()
        if record["state"] in FINAL_STATES:
            return Lease("done", record)
        if record["state"] == "sending" and record["lease_expires_at"] > now:
            return Lease("busy", record)
        expires = now + timedelta(seconds=lease_seconds(settings))
        transaction.update(path, {"state": "sending", "lease_token": token, "lease_expires_at": expires})
        return Lease("send", record)

    return database().run_transaction(take)


def outcome_state(status_code: int | None) -> State:
    if status_code is None or status_code in _RETRYABLE_STATUSES or status_code >= 500:
        return "retrying"
    return "delivered" if 200 <= status_code < 300 else "abandoned"


class NoSigningSecret(Exception):
    """A job's own receiver whose owner has no signing secret: never sent unsigned."""


def signing_keys(record: dict[str, Any], settings: Settings, at: datetime) -> list[str]:
    """The operator's secret for ``WEBHOOK_URL``; for a job's own URL, its owner's
    (read now, so a rotation applies to retries). Records written without an
    owner (by hand, or before owners were recorded) are sent unsigned."""
    if record.get("receiver") == messages.OPERATOR:
        return [settings.webhook_secret] if settings.webhook_secret else []
    owner = record.get("owner")
    if not owner:
        return []
    found = signing_secrets.read(owner)
    if found is None:
        raise NoSigningSecret("aucun secret de signature pour le propriétaire de la tâche")
    return found.signing_secrets(at)


def delivery_headers(record: dict[str, Any], settings: Settings, at: datetime) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": messages.USER_AGENT}
    operator = record.get("receiver") == messages.OPERATOR
    if operator and settings.is_production and settings.webhook_secret:
        headers["X-Webhook-Secret"] = settings.webhook_secret  # the seed's header: the operator's URL only
    return headers | messages.signature_headers(
        record["event_id"], record["payload"], signing_keys(record, settings, at), at
    )


def send(record: dict[str, Any], settings: Settings) -> Attempt:
    """POST the stored payload once through ``outbound`` (public addresses only, pinned);
    redirects are not followed, the body not read. Every error ends up in the Attempt."""
    at = utcnow()
    started = time.monotonic()
    status_code, error, final = None, None, False
    try:
        with outbound.client(settings.webhook_timeout_seconds) as client, client.stream(
            "POST",
            record["url"],
            content=record["payload"].encode(),
            headers=delivery_headers(record, settings, at),
        ) as response:
            status_code = response.status_code
    except outbound.OutboundError as exc:
        error, final = f"OutboundError: {exc}", not exc.retryable
    except httpx2.InvalidURL as exc:  # httpx2 cannot even build the request: final
        error, final = f"URL invalide : {exc}", True
    except httpx2.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        logger.exception("webhook send failed")
        error = f"{type(exc).__name__}: {exc}"
    if status_code is not None and not 200 <= status_code < 300:
        error = f"HTTP {status_code}"
    duration_ms = int((time.monotonic() - started) * 1000)
    state = "abandoned" if final else outcome_state(status_code)
    return Attempt(at, status_code, error and error[:500], state, duration_ms)


def record_attempt(path: str, token: str, attempt: Attempt, retry_count: str) -> None:
    """Count the attempt; set the state only while this request holds the lease
    (a takeover after expiry owns it then), except that delivered always sticks."""
    def record(transaction: Transaction) -> None:
        current = transaction.get(path).data
        if current is None:  # the job and its records expired meanwhile (TTL)
            return
        entry = {
            "at": attempt.at,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "state": attempt.state,
            "duration_ms": attempt.duration_ms,
            "task_retry_count": retry_count,
        }
        changes: dict[str, Any] = {
            "attempts": current.get("attempts", 0) + 1,
            "attempt_log": (current.get("attempt_log") or [])[-(ATTEMPT_LOG_SIZE - 1):] + [entry],
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
            "last_attempt_at": attempt.at,
        }
        if current["state"] != "delivered" and (
            current.get("lease_token") == token or attempt.state == "delivered"
        ):
            changes |= {"state": attempt.state, "lease_token": None, "lease_expires_at": None}
            if attempt.state == "delivered":
                changes["delivered_at"] = attempt.at
        transaction.update(path, changes)

    database().run_transaction(record)


def deliver(job_id: str, event_id: str, retry_count: str) -> flask.Response:
    settings = load_settings()
    path = messages.delivery_path(job_id, event_id)
    token = secrets.token_hex(8)
    lease = take_lease(path, token, settings)
    context = {"event_id": event_id, "task_retry_count": retry_count}
    if lease.outcome == "missing":
        logger.error("webhook delivery record not found", **fields(**context))
        return json_response({"event_id": event_id, "state": "missing"})
    if lease.outcome == "done":
        logger.info("webhook already %s", lease.record["state"], **fields(**context))
        return json_response({"event_id": event_id, "state": lease.record["state"]})
    if lease.outcome == "busy":
        logger.info("webhook being sent by another delivery", **fields(**context))
        return error_response(409, "Webhook en cours d'envoi par une autre tâche")

    attempt = send(lease.record, settings)
    record_attempt(path, token, attempt, retry_count)
    log = fields(
        **context,
        event=lease.record["event"],
        status_code=attempt.status_code,
        error=attempt.error,
        state=attempt.state,
        duration_ms=attempt.duration_ms,
    )
    if attempt.state == "retrying":
        logger.warning("webhook attempt failed, Cloud Tasks will retry", **log)
        return error_response(503, "Destinataire du webhook indisponible, nouvel essai plus tard")
    level = logging.INFO if attempt.state == "delivered" else logging.ERROR
    logger.log(level, "webhook %s", attempt.state, **log)
    return json_response({"event_id": event_id, "state": attempt.state})


def handle_request(request: flask.Request) -> flask.Response:
    """Entry point of ``webhook_delivery``: body ``{"job_id", "event_id"}``."""
    settings = load_settings()
    with request_context(request):
        refused = task_auth.refusal(request, audience=settings.webhook_delivery_url)
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        job_id, event_id = str(body.get("job_id", "")), str(body.get("event_id", ""))
        if not JOB_ID_PATTERN.match(job_id) or not messages.EVENT_ID_PATTERN.match(event_id):
            # Retrying a malformed task would never succeed: drop it loudly, as the worker does.
            logger.error("malformed webhook task body dropped")
            return json_response({"state": "dropped"})
        with log_context(job_id=job_id):
            return deliver(job_id, event_id, request.headers.get(RETRY_COUNT_HEADER, ""))
