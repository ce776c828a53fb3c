"""Google-style signed tokens for tests: a key pair, its certificate served from loopback,
and tokens from the local Tasks emulator's own key."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt

from emulator.cloud_tasks.oidc import CERTS_PATH, CertsServer, TokenMinter, new_private_key_pem, self_signed_cert_pem
from tests.loopback import LoopbackServer, QuietHandler

if TYPE_CHECKING:
    from emulator.stack import Stack


def _key_and_cert(common_name: str) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed certificate for ``common_name`` (both PEM)."""
    private_pem = new_private_key_pem()
    return private_pem, self_signed_cert_pem(private_pem, common_name).encode()


def cloud_tasks_token(stack: Stack, audience: str) -> str:
    """An OIDC token for a task target, minted as the stack's Tasks emulator mints them (its key)."""
    minter = TokenMinter.from_key_file(stack.tasks_oidc_key_file)
    return minter.token(stack.env["TASKS_SERVICE_ACCOUNT"], audience)


TASKS_ACCOUNT = "imagegen-tasks@unit-project.iam.gserviceaccount.com"


@contextlib.contextmanager
def emulator_oidc(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """The Tasks emulator's minting and certificate server, in process, wired into the
    functions' settings (``TASKS_SERVICE_ACCOUNT``, ``OIDC_CERTS_URL``); yields ``mint(audience)``."""
    from imagegen import google_tokens
    from imagegen.config import load_settings

    minter = TokenMinter(new_private_key_pem())
    server = CertsServer("127.0.0.1", 0, minter)
    server.serve_in_background()
    monkeypatch.setenv("TASKS_SERVICE_ACCOUNT", TASKS_ACCOUNT)
    monkeypatch.setenv("OIDC_CERTS_URL", f"http://127.0.0.1:{server.server_address[1]}{CERTS_PATH}")
    load_settings.cache_clear()
    google_tokens.certs_transport.cache_clear()
    try:
        yield lambda audience: minter.token(TASKS_ACCOUNT, audience)
    finally:
        server.shutdown()
        server.server_close()
        load_settings.cache_clear()
        google_tokens.certs_transport.cache_clear()


class CertServer(LoopbackServer):
    """Serves ``{kid: PEM certificate}`` on loopback and counts the downloads."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.fetches = 0
        body = json.dumps(certs).encode()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                headers = {"Content-Type": "application/json", "Cache-Control": "public, max-age=300, must-revalidate"}
                self.reply(200, body, headers)

        super().__init__(Handler, name="cert-server")
        self.url = f"{self.base_url}/certs"


class TokenSigner:
    """Signs JWTs with a key whose certificate a ``CertServer`` can serve (``kid`` header)."""

    kid = "test-kid-1"

    def __init__(self) -> None:
        private_pem, cert_pem = _key_and_cert("signer.test")
        self.signer = crypt.RSASigner.from_string(private_pem, self.kid)
        self.cert_pem = cert_pem.decode()
        stranger_pem, _ = _key_and_cert("stranger.test")
        self.stranger = crypt.RSASigner.from_string(stranger_pem, self.kid)

    def sign(self, claims: dict[str, Any], signer: Any = None) -> str:
        return google_jwt.encode(signer or self.signer, claims, header={"kid": self.kid}).decode()


def firebase_claims(project: str, uid: str = "uid-123") -> dict[str, Any]:
    """The claims of a fresh Firebase Auth ID token of ``uid`` for ``project``."""
    now = int(time.time())
    return {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": now - 60,
        "exp": now + 3600,
        "auth_time": now - 120,
    }


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none``: the ID tokens the Firebase emulators accept."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
