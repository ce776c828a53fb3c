"""``GET /api/webhooks/secret`` and ``POST /api/webhooks/secret/rotate``: the caller's
own webhook signing secret (see ``webhooks.signing_secrets``), for its owner only."""

from __future__ import annotations

import logging

import flask

from imagegen.api.auth import Principal
from imagegen.config import load_settings
from imagegen.http import json_response
from imagegen.models import WebhookSecretResponse
from imagegen.results import iso
from imagegen.webhooks import signing_secrets

logger = logging.getLogger(__name__)
_NO_STORE = {"Cache-Control": "no-store"}


def _body(found: signing_secrets.OwnerSecret) -> WebhookSecretResponse:
    previous = found.previous_expires_at if found.previous_secret else None
    return WebhookSecretResponse(
        secret=found.secret,
        created_at=iso(found.created_at),
        rotated_at=iso(found.rotated_at) or None,
        previous_secret_expires_at=iso(previous) or None,
    )


def get_secret(request: flask.Request, principal: Principal) -> flask.Response:
    """The caller's secret, created on first use."""
    return json_response(_body(signing_secrets.ensure(principal.owner)), headers=_NO_STORE)


def rotate_secret(request: flask.Request, principal: Principal) -> flask.Response:
    """A new secret; the previous one keeps signing for ``WEBHOOK_SECRET_GRACE_SECONDS``."""
    rotated = signing_secrets.rotate(principal.owner, load_settings().webhook_secret_grace_seconds)
    logger.info("webhook signing secret rotated")
    return json_response(_body(rotated), headers=_NO_STORE)
