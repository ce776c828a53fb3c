"""Job documents in Firestore: one document per job, never a shared counter.

Document ``{JOBS_COLLECTION}/{job_id}``::

    job_id, owner, status, message, progress, errors[]
    request    {prompt, input_image_url, num_images, size, format, style, quality}
    webhook    {url, events} | None          per-job override of WEBHOOK_URL
    images     {"1": {...}, "2": {...}}      one entry per stored image
    metadata   {...}                         the seed's result metadata, at the end
    lease      {owner, expires_at} | None    which worker delivery owns the job
    attempts   worker deliveries that claimed the job
    trace      X-Cloud-Trace-Context of the creating request
    created_at, updated_at, expires_at (TTL policy deletes old jobs)

Workers only write under a lease they hold, inside a transaction, so a
duplicate or late Cloud Tasks delivery can neither run a job twice nor write
over a finished one. Contended transactions (ABORTED) are retried by the
client up to ``_TX_ATTEMPTS`` times.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from .clients import firestore_client
from .config import load_settings
from .models import JOB_ID_PATTERN, JobStatus

_TX_ATTEMPTS = 10
_JOB_TTL = timedelta(days=30)
_ID_ALPHABET = string.ascii_lowercase + string.digits

STATUS_MESSAGES = {
    JobStatus.PENDING: "En attente de démarrage",
    JobStatus.INITIALIZING: "Initialisation du modèle Gemini",
    JobStatus.GENERATING: "Génération en cours...",
    JobStatus.SAVING: "Sauvegarde des images",
    JobStatus.FAILED: "Échec de la génération",
    JobStatus.CANCELLED: "Tâche annulée",
}


class LeaseLost(Exception):
    """The job was finished, cancelled or taken over by another delivery."""


@dataclass(frozen=True)
class Claim:
    """Outcome of a worker delivery trying to take a job.

    ``run``: the caller owns the lease; ``finished``: nothing left to do;
    ``busy``: another live delivery owns it; ``missing``: no such job.
    """

    outcome: Literal["run", "finished", "busy", "missing"]
    job: dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_job_id() -> str:
    return "img_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def _collection() -> Any:
    return firestore_client().collection(load_settings().jobs_collection)


def _transaction() -> Any:
    return firestore_client().transaction(max_attempts=_TX_ATTEMPTS)


def create_job(
    job_id: str,
    request: dict[str, Any],
    *,
    owner: str,
    webhook: dict[str, Any] | None,
    trace: str,
) -> dict[str, Any]:
    """Write a new PENDING job; the id is random so the write never contends."""
    now = utcnow()
    job = {
        "job_id": job_id,
        "owner": owner,
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
        "trace": trace,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + _JOB_TTL,
    }
    _collection().document(job_id).create(job)
    return job


def get_job(job_id: str) -> dict[str, Any] | None:
    """The job document, or None for unknown and malformed ids alike."""
    if not JOB_ID_PATTERN.match(job_id):
        return None
    snapshot = _collection().document(job_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def claim_job(job_id: str, worker_id: str, lease_seconds: int) -> Claim:
    """Take the job's lease unless it is finished or held by a live delivery."""
    from google.cloud import firestore

    ref = _collection().document(job_id)

    @firestore.transactional
    def claim(transaction: Any) -> Claim:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return Claim("missing", {})
        job = snapshot.to_dict()
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
        transaction.update(ref, changes)
        return Claim("run", job | changes)

    return claim(_transaction())


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
    """Apply ``changes`` if ``worker_id`` still holds the lease; extend or release it.

    Raises ``LeaseLost`` when the job was cancelled, finished or taken over,
    which is how a worker learns to stop between images.
    """
    from google.cloud import firestore

    ref = _collection().document(job_id)
    lease_seconds = load_settings().job_lease_seconds

    @firestore.transactional
    def update(transaction: Any) -> dict[str, Any]:
        snapshot = ref.get(transaction=transaction)
        job = snapshot.to_dict() if snapshot.exists else None
        if (
            job is None
            or JobStatus(job["status"]).is_terminal
            or not job.get("lease")
            or job["lease"]["owner"] != worker_id
        ):
            raise LeaseLost(job_id)
        now = utcnow()
        lease = None if release else {
            "owner": worker_id,
            "expires_at": now + timedelta(seconds=lease_seconds),
        }
        full = {**changes, "lease": lease, "updated_at": now}
        transaction.update(ref, full)
        return job | full

    return update(_transaction())


def set_status(
    job_id: str, worker_id: str, status: JobStatus, *, progress: int, message: str = "", **extra: Any
) -> dict[str, Any]:
    """Move an owned job to ``status``; a terminal status releases the lease."""
    changes = _status_fields(status, progress=progress, message=message) | extra
    return update_owned(job_id, worker_id, changes, release=status.is_terminal)


def fail_unowned(job_id: str, errors: list[str]) -> None:
    """Fail a job no worker has claimed yet (e.g. its task could not be enqueued)."""
    now = utcnow()
    _collection().document(job_id).update(
        _status_fields(JobStatus.FAILED, progress=100)
        | {"errors": errors, "updated_at": now, "lease": None}
    )


def release_lease(job_id: str, worker_id: str) -> None:
    """Give the job back after a crash-like error so the task's retry can start at once."""
    try:
        update_owned(job_id, worker_id, {}, release=True)
    except LeaseLost:
        pass
