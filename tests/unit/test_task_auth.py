"""Only Cloud Tasks may call the task targets: OIDC in production, a shared secret locally.

Tokens are signed by a local key whose certificate a loopback server serves
(``OIDC_CERTS_URL``), the way Google serves its OAuth2 certificates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from imagegen import google_tokens
from imagegen.config import load_settings
from imagegen.task_auth import Unauthorized, verify_task_caller
from tests.tokens import CertServer, TokenSigner

ACCOUNT = "imagegen-tasks@my-project.iam.gserviceaccount.com"
WORKER = "https://imagegen-worker-123456.europe-west1.run.app/"


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, signer: TokenSigner) -> Iterator[TokenSigner]:
    server = CertServer({signer.kid: signer.cert_pem})
    monkeypatch.setenv("TASKS_SERVICE_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("OIDC_CERTS_URL", server.url)
    monkeypatch.setenv("TASKS_SHARED_SECRET", "not-used-when-oidc-is-on")
    load_settings.cache_clear()
    google_tokens.certs_transport.cache_clear()
    yield signer
    server.close()
    load_settings.cache_clear()
    google_tokens.certs_transport.cache_clear()


def cloud_tasks_token(signer: TokenSigner, key: Any = None, **overrides: Any) -> dict[str, str]:
    """The Authorization header Cloud Tasks sends, with optional claim overrides."""
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": WORKER,
        "azp": "1234567890",
        "email": ACCOUNT,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now - 10,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {"Authorization": f"Bearer {signer.sign(claims, key)}"}


def test_token_from_the_queue_account_is_accepted(production: TokenSigner) -> None:
    verify_task_caller(Headers(cloud_tasks_token(production)), audience=WORKER)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://imagegen-api-123456.europe-west1.run.app/"}, "invalide"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "invalide"),
        ({"iss": "https://evil.example.com"}, "autre compte"),
        ({"email": "someone-else@my-project.iam.gserviceaccount.com"}, "autre compte"),
        ({"email_verified": False}, "non vérifiée"),
    ],
)
def test_wrong_tokens_are_refused(production: TokenSigner, overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verify_task_caller(Headers(cloud_tasks_token(production, **overrides)), audience=WORKER)


def test_token_signed_by_another_key_is_refused(production: TokenSigner) -> None:
    with pytest.raises(Unauthorized, match="invalide"):
        verify_task_caller(Headers(cloud_tasks_token(production, production.stranger)), audience=WORKER)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, {"X-Tasks-Secret": "not-used-when-oidc-is-on"}],
)
def test_missing_token_is_refused_even_with_the_local_secret(production: TokenSigner, headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        verify_task_caller(Headers(headers), audience=WORKER)


def test_local_shared_secret_and_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKS_SERVICE_ACCOUNT", raising=False)
    monkeypatch.setenv("TASKS_SHARED_SECRET", "s3cret")
    load_settings.cache_clear()
    verify_task_caller(Headers({"X-Tasks-Secret": "s3cret"}), audience=WORKER)
    with pytest.raises(Unauthorized):
        verify_task_caller(Headers({"X-Tasks-Secret": "s3cre"}), audience=WORKER)
    monkeypatch.delenv("TASKS_SHARED_SECRET")
    load_settings.cache_clear()
    with pytest.raises(Unauthorized):  # neither configured: nobody gets in
        verify_task_caller(Headers({"X-Tasks-Secret": ""}), audience=WORKER)
    load_settings.cache_clear()


@pytest.mark.parametrize("sent", ["sécret", "s3cret\u00e9", "\u2603", "s3cr\xff"])
def test_a_non_ascii_secret_is_refused_not_a_crash(monkeypatch: pytest.MonkeyPatch, sent: str) -> None:
    monkeypatch.delenv("TASKS_SERVICE_ACCOUNT", raising=False)
    monkeypatch.setenv("TASKS_SHARED_SECRET", "s3cret")
    load_settings.cache_clear()
    with pytest.raises(Unauthorized):
        verify_task_caller(Headers({"X-Tasks-Secret": sent}), audience=WORKER)
    load_settings.cache_clear()
