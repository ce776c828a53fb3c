"""Verifying the webhooks the API sends (Standard Webhooks signatures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError
from standardwebhooks.webhooks import WebhookVerificationError as _LibraryError

from imagegen_client.errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
    """The payload of a webhook whose signature verifies; raises WebhookVerificationError otherwise.

    ``secret`` as the API's rule says: ``whsec_<base64>`` (your key, from
    ``webhook_secret()``) is base64-decoded; any other string (an operator's
    ``WEBHOOK_SECRET`` in the seed's style) is the raw UTF-8 key. Any of the
    space-separated ``v1,`` signatures may match (during a key rotation the
    API signs with both keys); the timestamp must be within 5 minutes.
    """
    try:
        verifier = Webhook(secret if secret.startswith(SECRET_PREFIX) else secret.encode())
        payload = verifier.verify(body, dict(headers.items()))
    except (_LibraryError, EmptyWebhookSecretError, ValueError) as exc:  # ValueError: malformed header or base64
        raise WebhookVerificationError(f"Webhook non vérifié : {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("Webhook non vérifié : le corps n'est pas un objet JSON")
    return payload
