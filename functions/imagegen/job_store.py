"""Job documents in Firestore: one document per job, never a shared counter.

Document ``{JOBS_COLLECTION}/{job_id}``::

    job_id, owner, api_key (hash of the creating key, or None), status, message, progress, errors[]
    error_code, safety, missing_images        typed failure (FAILED/CANCELLED), allow_partial
    deadline_at, billed                       timeout_seconds after creation; False: no model call
    request    {prompt, input_image_url, num_images, size, format, style, quality}
    webhook    {url, events} | None          per-job override of WEBHOOK_URL
    images     {"1": {...}, "2": {...}}      one entry per stored image
    metadata   {...}                         the seed's result metadata, at the end
    lease      {owner, expires_at} | None    which worker delivery owns the job
    attempts   worker deliveries that claimed the job
    queued_at  when its task was created; None until then (the sweeper queues it)
    sweeps     times the sweeper re-queued it after its deliveries stopped
    trace      X-Cloud-Trace-Context of the creating request
    usage_*, completed_day   flat usage of a completed job, for aggregations (``usage``)
    created_at, updated_at, expires_at (TTL policy deletes old jobs)

Workers only write under a lease they hold, inside a transaction, so a
duplicate or late Cloud Tasks delivery can neither run a job twice nor write
over a finished one. The database runs in optimistic concurrency mode
(``concurrency_mode = "OPTIMISTIC"`` in infra/firestore.tf): a transaction
takes no locks, and its commit is ABORTED when a document it read changed
meanwhile; ``Database.run_transaction`` runs it again after a backoff.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from imagegen.clients import database, firestore_client
from imagegen.config import load_settings
from imagegen.firestore.database import Transaction
from imagegen.firestore.queries import Query
from imagegen.models import JOB_ID_PATTERN, JobStatus

_JOB_TTL = timedelta(days=30)
_IDEMPOTENCY_COLLECTION = "idempotency_keys"
_IDEMPOTENCY_TTL = timedelta(hours=24)
_ID_ALPHABET = string.ascii_lowercase + string.digits

GAVE_UP = "Échec de la génération après plusieurs tentatives"
NEVER_QUEUED = "File d'attente indisponible, la tâche n'a pas pu démarrer"

STATUS_MESSAGES = {
    JobStatus.PENDING: "En attente de démarrage",
    JobStatus.INITIALIZING: "Initialisation du modèle Gemini",
    JobStatus.GENERATING: "Génération en cours...",
    JobStatus.SAVING: "Sauvegarde des images",
    JobStatus.FAILED: "Échec de la génération",
    JobStatus.CANCELLED: "Tâche annulée",
}


class LeaseLost(Exception):
    """The job was finished, cancelled or taken over, or the lease ran out.

    ``keeps_no_images`` says whether the job was cancelled or failed (its
    deadline, a blocked image): only then may the worker delete what it wrote
    (a job taken over may have recorded the same names).
    """

    def __init__(self, job_id: str, status: str = "") -> None:
        super().__init__(job_id)
        self.keeps_no_images = status in (JobStatus.CANCELLED.value, JobStatus.FAILED.value)


@dataclass(frozen=True)
class Claim:
    """Outcome of a worker delivery trying to take a job.

    ``run``: the caller owns the lease; ``finished``: nothing left to do;
    ``busy``: another live delivery owns it; ``missing``: no such job.
    """

    outcome: Literal["run", "finished", "busy", "missing"]
    job: dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return "img_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def _path(job_id: str) -> str:
    return f"{load_settings().jobs_collection}/{job_id}"


def _jobs() -> Query:
    return database().query(load_settings().jobs_collection)


def new_job(
    request: dict[str, Any],
    *,
    owner: str,
    webhook: dict[str, Any] | None,
    trace: str,
    api_key: str = "",
) -> dict[str, Any]:
    """A PENDING job document, not yet written; its id is random, so writes never contend."""
    now = utcnow()
    job_id = new_job_id()
    return {
        "job_id": job_id,
        "owner": owner,
        "api_key": api_key or None,
        "status": JobStatus.PENDING.value,
        "message": STATUS_MESSAGES[JobStatus.PENDING],
        "progress": 0,
        "errors": [],
        "request": request,
        "webhook": webhook,
        "images": {},
        "metadata": None,
        "lease": None,
        "attempts": 0,
        "queued_at": None,
        "sweeps": 0,
        "trace": trace,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + _JOB_TTL,
        "deadline_at": now + timedelta(seconds=timeout) if (timeout := request.get("timeout_seconds")) else None,
    }


def create_job(job: dict[str, Any]) -> None:
    """Write a job built by ``new_job``."""
    database().create(_path(job["job_id"]), job)


def never_queued(job: dict[str, Any]) -> bool:
    """A PENDING job whose task was never created (jobs older than ``queued_at`` count as queued)."""
    return job["status"] == JobStatus.PENDING.value and "queued_at" in job and job["queued_at"] is None


def mark_queued(job_id: str) -> None:
    """Record that the job's task exists, so the sweeper leaves it alone."""
    database().update(_path(job_id), {"queued_at": utcnow()})


def get_job(job_id: str) -> dict[str, Any] | None:
    """The job document, or None for unknown and malformed ids alike."""
    if not JOB_ID_PATTERN.match(job_id):
        return None
    return database().get(_path(job_id)).data


def claim_job(job_id: str, worker_id: str, lease_seconds: int) -> Claim:
    """Take the job's lease unless it is finished or held by a live delivery."""
    path = _path(job_id)

    def claim(transaction: Transaction) -> Claim:
        job = transaction.get(path).data
        if job is None:
            return Claim("missing", {})
        if JobStatus(job["status"]).is_terminal:
            return Claim("finished", job)
        now = utcnow()
        lease = job.get("lease")
        if lease and lease["owner"] != worker_id and lease["expires_at"] > now:
            return Claim("busy", job)
        changes: dict[str, Any] = {
            "lease": {"owner": worker_id, "expires_at": now + timedelta(seconds=lease_seconds)},
            "attempts": job.get("attempts", 0) + 1,
            "updated_at": now,
        }
        if job["status"] == JobStatus.PENDING.value:
            changes |= _status_fields(JobStatus.INITIALIZING, progress=5)
        transaction.update(path, changes)
        return Claim("run", job | changes)

    return database().run_transaction(claim)


def _status_fields(status: JobStatus, *, progress: int, message: str = "") -> dict[str, Any]:
    return {
        "status": status.value,
        "message": message or STATUS_MESSAGES[status],
        "progress": progress,
    }


def update_owned(
    job_id: str,
    worker_id: str,
    changes: dict[str, Any],
    *,
    release: bool = False,
) -> dict[str, Any]:
    """Apply ``changes`` if ``worker_id`` still holds an unexpired lease; keep or release it.

    The lease is not extended: it covers one attempt, which the worker's
    timeout ends first (see the README's time budget). Raises ``LeaseLost``
    when the job was cancelled, finished or taken over, or the lease ran out,
    which is how a worker learns to stop.
    """
    path = _path(job_id)

    def update(transaction: Transaction) -> dict[str, Any]:
        job = transaction.get(path).data
        now = utcnow()
        if (
            job is None
            or JobStatus(job["status"]).is_terminal
            or not job.get("lease")
            or job["lease"]["owner"] != worker_id
            or job["lease"]["expires_at"] <= now
        ):
            raise LeaseLost(job_id, job["status"] if job else "")
        full = {**changes, "updated_at": now} | ({"lease": None} if release else {})
        transaction.update(path, full)
        return job | full

    return database().run_transaction(update)


def set_status(
    job_id: str, worker_id: str, status: JobStatus, *, progress: int, message: str = "", **extra: Any
) -> dict[str, Any]:
    """Move an owned job to ``status``; a terminal status releases the lease."""
    changes = _status_fields(status, progress=progress, message=message) | extra
    return update_owned(job_id, worker_id, changes, release=status.is_terminal)


def deadline_message(seconds: int) -> str:
    """The French error of a job that ran out of ``timeout_seconds`` (worker and sweeper)."""
    return f"Délai dépassé : la tâche n'était pas terminée après {seconds} s (timeout_seconds)"


def _unbilled(job: dict[str, Any]) -> dict[str, Any]:
    """``billed: False`` for a job no delivery ever claimed: no model call was made."""
    never_ran = job["status"] == JobStatus.PENDING.value and not job.get("images")
    return {"billed": False} if never_ran else {}


def fail_job(job_id: str, message: str, error_code: str = "internal") -> bool:
    """Fail an unfinished job whoever holds it (the queue's last attempt, the sweeper).

    A live holder learns it at its next write (``LeaseLost``). False when the
    job had already ended.
    """
    path = _path(job_id)

    def fail(transaction: Transaction) -> bool:
        job = transaction.get(path).data
        if job is None or JobStatus(job["status"]).is_terminal:
            return False
        transaction.update(
            path,
            _status_fields(JobStatus.FAILED, progress=100)
            | {"errors": [message], "error_code": error_code, "updated_at": utcnow(), "lease": None}
            | _unbilled(job),
        )
        return True

    return database().run_transaction(fail)


def release_lease(job_id: str, worker_id: str) -> None:
    """Give the job back after a crash-like error so the task's retry can start at once."""
    try:
        update_owned(job_id, worker_id, {}, release=True)
    except LeaseLost:
        pass


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used with a different request body."""


class AlreadyFinished(Exception):
    """The job ended before it could be cancelled; carries the job."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(job["job_id"])
        self.job = job


def create_job_once(
    job: dict[str, Any], *, key: str, request_hash: str
) -> tuple[dict[str, Any], bool]:
    """Create ``job`` unless this idempotency key already made one (Stripe's semantics).

    The key document ``idempotency_keys/{key}`` and the job are written in one
    transaction, so two concurrent requests with the same key create one job.
    Returns the job and whether it was created now. Keys live 24 h
    (``expires_at``, a Firestore TTL field); an expired key is reusable.
    """
    key_path = f"{_IDEMPOTENCY_COLLECTION}/{key}"

    def create(transaction: Transaction) -> tuple[dict[str, Any], bool]:
        record = transaction.get(key_path).data
        if record and record["expires_at"] > utcnow():
            if record["request_hash"] != request_hash:
                raise IdempotencyConflict(key)
            existing = transaction.get(_path(record["job_id"])).data
            return existing or {}, False
        transaction.set(
            key_path,
            {
                "job_id": job["job_id"],
                "owner": job["owner"],
                "request_hash": request_hash,
                "created_at": job["created_at"],
                "expires_at": job["created_at"] + _IDEMPOTENCY_TTL,
            },
        )
        transaction.create(_path(job["job_id"]), job)
        return job, True

    return database().run_transaction(create)


def cancel_job(job_id: str, owner: str) -> dict[str, Any] | None:
    """Cancel the owner's unfinished job; None when it is not theirs or does not exist."""
    if not JOB_ID_PATTERN.match(job_id):
        return None
    path = _path(job_id)

    def cancel(transaction: Transaction) -> dict[str, Any] | None:
        job = transaction.get(path).data
        if job is None or job["owner"] != owner:
            return None
        if JobStatus(job["status"]).is_terminal:
            raise AlreadyFinished(job)
        changes = _status_fields(JobStatus.CANCELLED, progress=job["progress"]) | {
            "errors": ["Tâche annulée à la demande du client"],
            "error_code": "cancelled",
            "lease": None,
            "updated_at": utcnow(),
        }
        transaction.update(path, changes)
        return job | changes

    return database().run_transaction(cancel)


def list_jobs(
    owner: str, *, status: str | None, limit: int, after: str | None
) -> list[dict[str, Any]] | None:
    """The owner's jobs, newest first, after the job id ``after`` (None if not theirs).

    Paging starts after the cursor job's snapshot, so Firestore orders ties by
    document id itself and the ``owner, created_at desc`` index suffices.
    """
    query = _jobs().where("owner", "==", owner)
    if status:
        query = query.where("status", "==", status)
    query = query.order_by("created_at", "DESCENDING")
    if after is not None:
        cursor = database().get(_path(after)) if JOB_ID_PATTERN.match(after) else None
        if cursor is None or cursor.data is None or cursor.data.get("owner") != owner:
            return None
        query = query.start_after(database().name(cursor.path), cursor.data)
    return database().find(query.limit(limit))


def _created_since(owner: str, since: datetime) -> Query:
    """Query: the jobs ``owner`` created after ``since`` (index ``owner, created_at``)."""
    return _jobs().where("owner", "==", owner).where("created_at", ">", since)


def count_created_since(owner: str, since: datetime) -> int:
    """How many jobs ``owner`` created after ``since`` (one aggregation, no document reads)."""
    return int(database().aggregate(_created_since(owner, since), {"jobs": ("count", None)})["jobs"])


def oldest_created_since(owner: str, since: datetime) -> datetime | None:
    query = _created_since(owner, since).order_by("created_at").limit(1)
    return next((job["created_at"] for job in database().find(query)), None)


def watch_job(job_id: str, on_change: Callable[[Any], None]) -> Any:
    """Listen to one job document (a Firestore ``on_snapshot`` on it, not a loop of reads).

    ``on_change`` gets the document's snapshot (``exists`` False once it is
    gone) each time it changes, the first time with its current state, on the
    listener's thread. Returns the ``Watch``: ``unsubscribe()`` ends it.
    """

    def deliver(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        on_change(snapshots[0] if snapshots else None)

    jobs = firestore_client().collection(load_settings().jobs_collection)
    return jobs.document(job_id).on_snapshot(deliver)


_ACTIVE = [s.value for s in JobStatus if not s.is_terminal]


def _jobs_where(limit: int, *conditions: tuple[str, str, Any]) -> list[dict[str, Any]]:
    """Up to ``limit`` jobs matching every ``(field, operator, value)`` condition."""
    query = _jobs()
    for field, operator, value in conditions:
        query = query.where(field, operator, value)
    return database().find(query.limit(limit))


def unqueued_jobs(created_before: datetime, limit: int) -> list[dict[str, Any]]:
    """PENDING jobs whose task was never created (index ``status, queued_at, created_at``)."""
    return _jobs_where(
        limit,
        ("status", "==", JobStatus.PENDING.value),
        ("queued_at", "==", None),
        ("created_at", "<", created_before),
    )


def overdue_jobs(now: datetime, limit: int) -> list[dict[str, Any]]:
    """Unfinished jobs whose ``deadline_at`` has passed (index ``status, deadline_at``)."""
    return _jobs_where(limit, ("status", "in", _ACTIVE), ("deadline_at", "<", now))


def quiet_jobs(updated_before: datetime, limit: int) -> list[dict[str, Any]]:
    """Unfinished jobs nothing wrote to since ``updated_before`` (index ``status, updated_at``)."""
    return _jobs_where(limit, ("status", "in", _ACTIVE), ("updated_at", "<", updated_before))


@dataclass(frozen=True)
class Recovery:
    """What the sweeper does with a quiet job: ``requeue`` (as sweep ``sweeps``), ``fail`` or ``skip``."""

    action: Literal["requeue", "fail", "skip"]
    sweeps: int = 0
    message: str = ""


def recover_quiet(
    job_id: str, quiet_since: datetime, *, max_attempts: int, max_sweeps: int
) -> Recovery:
    """Re-queue or fail a job whose deliveries stopped, checked again in a transaction.

    Skipped when it ended, was written to or queued after ``quiet_since``, or
    holds a live lease. A job that was never queued, or was claimed
    ``max_attempts`` times, or swept ``max_sweeps`` times already, fails;
    otherwise its sweep count goes up and the caller queues it again.
    """
    path = _path(job_id)

    def recover(transaction: Transaction) -> Recovery:
        job = transaction.get(path).data
        now = utcnow()
        if (
            job is None
            or JobStatus(job["status"]).is_terminal
            or max(job["updated_at"], job.get("queued_at") or job["updated_at"]) >= quiet_since
            or (job.get("lease") and job["lease"]["expires_at"] > now)
        ):
            return Recovery("skip")
        if never_queued(job):
            recovery = Recovery("fail", message=NEVER_QUEUED)
        elif job.get("attempts", 0) >= max_attempts or job.get("sweeps", 0) >= max_sweeps:
            recovery = Recovery("fail", message=GAVE_UP)
        else:
            recovery = Recovery("requeue", sweeps=job.get("sweeps", 0) + 1)
        if recovery.action == "fail":
            changes = _status_fields(JobStatus.FAILED, progress=100) | {
                "errors": [recovery.message],
                "error_code": "internal",
            } | _unbilled(job)
        else:
            changes = {"sweeps": recovery.sweeps}
        transaction.update(path, changes | {"lease": None, "updated_at": now})
        return recovery

    return database().run_transaction(recover)
