"""Only Cloud Tasks may call the task targets: an OIDC token for the queue's account.

Tokens are signed by a local key whose certificate a loopback server serves
(``OIDC_CERTS_URL``), the way Google serves its OAuth2 certificates; the local
Tasks emulator's own tokens pass the same check.
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
from tests.tokens import CertServer, TokenSigner, emulator_oidc

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
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, {"X-CloudTasks-TaskName": "forged"}],
)
def test_missing_token_is_refused(production: TokenSigner, headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        verify_task_caller(Headers(headers), audience=WORKER)


def test_without_a_service_account_everyone_is_refused(monkeypatch: pytest.MonkeyPatch, signer: TokenSigner) -> None:
    monkeypatch.delenv("TASKS_SERVICE_ACCOUNT", raising=False)
    load_settings.cache_clear()
    with pytest.raises(Unauthorized, match="TASKS_SERVICE_ACCOUNT"):  # fails closed
        verify_task_caller(Headers(cloud_tasks_token(signer)), audience=WORKER)
    load_settings.cache_clear()


@pytest.mark.parametrize("sent", ["Bearer sécret", "Bearer s3cret\u00e9", "Bearer \u2603", "Bearer s3cr\xff"])
def test_a_non_ascii_token_is_refused_not_a_crash(production: TokenSigner, sent: str) -> None:
    with pytest.raises(Unauthorized):
        verify_task_caller(Headers({"Authorization": sent}), audience=WORKER)


def test_tokens_of_the_local_tasks_emulator_pass_the_production_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator_oidc(monkeypatch) as mint:
        verify_task_caller(Headers({"Authorization": f"Bearer {mint(WORKER)}"}), audience=WORKER)
        with pytest.raises(Unauthorized, match="invalide"):
            verify_task_caller(Headers({"Authorization": f"Bearer {mint(WORKER + 'other')}"}), audience=WORKER)
