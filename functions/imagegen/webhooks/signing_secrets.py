"""One webhook signing secret per owner, for the receivers callers choose.

A job's own ``webhook_url`` is chosen by the caller, so it never sees the
operator's ``WEBHOOK_SECRET``: its deliveries are signed (Standard Webhooks)
with a secret of the job's owner, ``whsec_<base64 of 32 random bytes>``.
The api creates it on first use (the owner's first job with a
``webhook_url``, or ``GET /api/webhooks/secret``) in Firestore
``webhook_secrets/{sha256(owner)}``: the owner is neither stored in clear
nor logged, and neither is the secret. ``webhook_delivery`` reads it when it
sends, so a rotation applies to retries too.

Rotation (``POST /api/webhooks/secret/rotate``) makes a new secret current
and keeps the previous one for ``WEBHOOK_SECRET_GRACE_SECONDS`` (default
24 h, the deliveries' retry window). Meanwhile deliveries carry both
signatures, ``v1,<new> v1,<previous>``: Standard Webhooks verifiers accept
a message when any one matches, so a receiver switches keys at its own pace.
A second rotation within the grace period drops the oldest key at once.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from imagegen.clients import database
from imagegen.job_store import utcnow

if TYPE_CHECKING:
    from imagegen.firestore.database import Transaction

COLLECTION = "webhook_secrets"


@dataclass(frozen=True)
class OwnerSecret:
    secret: str
    created_at: datetime
    rotated_at: datetime | None = None
    previous_secret: str | None = None
    previous_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery at ``now`` is signed with: current first."""
        keep_previous = self.previous_secret and self.previous_expires_at and self.previous_expires_at > now
        return [self.secret, self.previous_secret] if keep_previous else [self.secret]  # type: ignore[list-item]


def _path(owner: str) -> str:
    return f"{COLLECTION}/{hashlib.sha256(owner.encode()).hexdigest()}"


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _from(data: dict[str, Any]) -> OwnerSecret:
    return OwnerSecret(**{name: data.get(name) for name in OwnerSecret.__dataclass_fields__})  # type: ignore[arg-type]


def read(owner: str) -> OwnerSecret | None:
    """The owner's secret, or None if it was never created (``webhook_delivery``: read only)."""
    data = database().get(_path(owner)).data
    return _from(data) if data is not None else None


def ensure(owner: str) -> OwnerSecret:
    """The owner's secret, created on first use (concurrent first uses agree on one)."""
    from imagegen.google_api.errors import AlreadyExists

    found = read(owner)
    if found is not None:
        return found
    created = OwnerSecret(secret=_new_secret(), created_at=utcnow())
    try:
        database().create(_path(owner), created.__dict__)
    except AlreadyExists:
        return read(owner) or created
    return created


def rotate(owner: str, grace_seconds: int) -> OwnerSecret:
    """A new current secret; the previous one still signs for ``grace_seconds``."""
    path = _path(owner)

    def swap(transaction: Transaction) -> OwnerSecret:
        data = transaction.get(path).data
        now = utcnow()
        current = _from(data) if data is not None else None
        rotated = OwnerSecret(
            secret=_new_secret(),
            created_at=current.created_at if current else now,
            rotated_at=now,
            previous_secret=current.secret if current else None,
            previous_expires_at=now + timedelta(seconds=grace_seconds) if current else None,
        )
        transaction.set(path, rotated.__dict__)
        return rotated

    return database().run_transaction(swap)
