"""Who is calling the public API: an API key, a Firebase Auth user, or nobody.

Credentials, in one of two headers (sending both is refused with 400, since
the caller's identity would be ambiguous):

* ``Authorization: Bearer <value>``: when ``FIREBASE_AUTH_ENABLED`` is true
  and the value looks like a JWT, a Firebase Auth ID token (owner
  ``firebase:<uid>``); otherwise an API key (owner ``key:<owner>``).
* ``X-API-Key: <key>``: an API key (see ``api.keys`` for where keys live).

A request without credentials is refused (401) when ``AUTH_REQUIRED`` is
true, and runs as the ``anonymous`` owner otherwise. Credentials that are
sent are always verified: a bad one is 401 even when authentication is
optional. Infrastructure failures (Firestore, the certificate download) are
not ``AuthError``: they propagate so the API answers 503, not 401.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from imagegen import google_tokens
from imagegen.api import keys
from imagegen.config import Settings, load_settings
from imagegen.logs import fields

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
AUTH_REQUIRED = "Authentification requise"
INVALID_KEY = "Clé API invalide"
INVALID_FIREBASE_TOKEN = "Jeton Firebase invalide"
UNSUPPORTED_SCHEME = "Schéma d'autorisation non pris en charge (Bearer attendu)"
AMBIGUOUS = "Envoyez Authorization ou X-API-Key, pas les deux"

FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
_FIREBASE_ISSUER = "https://securetoken.google.com/"
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_MAX_UID_LENGTH = 128


@dataclass(frozen=True)
class Principal:
    """The caller: ``owner`` is what jobs are stored and filtered under."""

    owner: str
    method: Literal["api_key", "firebase", "anonymous"]
    key_hash: str = field(default="", compare=False)
    """The API key's SHA-256 (its document id), for the key's monthly budget."""


ANONYMOUS = Principal("anonymous", "anonymous")


class AuthError(Exception):
    """The request's credentials are missing or wrong; answer ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate`` for 401 answers, as RFC 9110 asks."""
        return {"WWW-Authenticate": 'Bearer realm="imagegen"'} if self.status == 401 else {}


def authenticate(headers: Any, query_key: str | None = None) -> Principal:
    """The caller of a request whose case-insensitive ``headers`` (e.g. Flask's) are given.

    ``query_key`` is an API key from the URL (``?api_key=``, accepted where a
    browser cannot send headers); it counts as an ``X-API-Key`` header.
    Raises ``AuthError``: 400 when two credentials are sent, 401 for
    missing (when required), malformed, unknown or disabled credentials.
    """
    settings = load_settings()
    authorization = headers.get("Authorization")
    api_key = headers.get(API_KEY_HEADER)
    if query_key is not None:
        if api_key is not None:
            raise AuthError(400, AMBIGUOUS)
        api_key = query_key
    if authorization is not None and api_key is not None:
        raise AuthError(400, AMBIGUOUS)
    if authorization is not None:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError(401, UNSUPPORTED_SCHEME)
        credential = credential.strip()
        if settings.firebase_auth_enabled and _JWT.match(credential):
            return _firebase_user(credential, settings)
        return _key_owner(credential)
    if api_key is not None:
        return _key_owner(api_key.strip())
    if settings.auth_required:
        raise AuthError(401, AUTH_REQUIRED)
    return ANONYMOUS


def _key_owner(key: str) -> Principal:
    owner = keys.lookup(key)
    if owner is None:
        raise AuthError(401, INVALID_KEY)
    return Principal(f"key:{owner}", "api_key", keys.hash_key(key))


def _firebase_user(token: str, settings: Settings) -> Principal:
    """Verify a Firebase Auth ID token as Firebase documents it.

    Same checks as ``google.oauth2.id_token.verify_firebase_token`` (signature
    by Google's securetoken keys, ``aud`` = the project, ``iss`` from it, a
    ``sub``), plus ``auth_time`` in the past; that function cannot take
    another certificate URL, which ``FIREBASE_CERTS_URL`` needs.
    """
    audience = settings.firebase_project_id
    try:
        claims = google_tokens.verify(
            token, audience=audience, certs_url=settings.firebase_certs_url or FIREBASE_CERTS_URL
        )
        uid = claims.get("sub")
        if claims.get("iss") != _FIREBASE_ISSUER + audience:
            raise ValueError(f"wrong issuer {claims.get('iss')!r}")
        if not isinstance(uid, str) or not 0 < len(uid) <= _MAX_UID_LENGTH:
            raise ValueError("no valid sub claim")
        auth_time = claims.get("auth_time")
        skew = google_tokens.CLOCK_SKEW_SECONDS
        if not isinstance(auth_time, (int, float)) or auth_time > time.time() + skew:
            raise ValueError("auth_time missing or in the future")
    except ValueError as exc:  # google-auth's InvalidValue and MalformedError included
        logger.info("firebase token refused", **fields(reason=str(exc)[:300]))
        raise AuthError(401, INVALID_FIREBASE_TOKEN) from exc
    return Principal(f"firebase:{uid}", "firebase")
