"""Only Cloud Tasks may call the task targets (worker, webhook delivery).

The request must carry a Google-signed OIDC token whose audience is the
target URL, issuer Google, and whose verified email is ``TASKS_SERVICE_ACCOUNT``
(the keys come from ``OIDC_CERTS_URL``, Google's by default; the local Tasks
emulator signs with its own key and serves its certificates). Without
``TASKS_SERVICE_ACCOUNT`` every caller is refused: a misconfigured target fails closed.
"""

from __future__ import annotations

import logging
from typing import Any

import flask

from imagegen import google_tokens
from imagegen.config import load_settings
from imagegen.http import error_response

logger = logging.getLogger(__name__)

_ISSUERS = {"https://accounts.google.com", "accounts.google.com"}
GOOGLE_OAUTH2_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


class Unauthorized(Exception):
    """The caller is not the queue; the target answers 401 and changes nothing."""


def verify_task_caller(headers: Any, audience: str) -> None:
    """Raise ``Unauthorized`` unless ``headers`` prove the call comes from Cloud Tasks."""
    settings = load_settings()
    if not settings.tasks_service_account:
        raise Unauthorized("TASKS_SERVICE_ACCOUNT n'est pas configuré")
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("jeton OIDC manquant")
    try:
        claims = google_tokens.verify(
            token, audience=audience, certs_url=settings.oidc_certs_url or GOOGLE_OAUTH2_CERTS_URL
        )
    except ValueError as exc:
        raise Unauthorized(f"jeton OIDC invalide : {exc}") from exc
    if claims.get("iss") not in _ISSUERS or claims.get("email") != settings.tasks_service_account:
        raise Unauthorized("jeton OIDC d'un autre compte de service")
    if not claims.get("email_verified", False):
        raise Unauthorized("adresse du compte de service non vérifiée")


def refusal(request: flask.Request, audience: str) -> flask.Response | None:
    """None when Cloud Tasks (or Cloud Scheduler) is POSTing; otherwise the 405 or 401 to answer."""
    if request.method != "POST":
        return error_response(405, "Méthode non autorisée", headers={"Allow": "POST"})
    try:
        verify_task_caller(request.headers, audience=audience)
    except Unauthorized as exc:
        logger.warning("task target call refused: %s", exc)
        return error_response(401, "Appel non autorisé")
    return None
