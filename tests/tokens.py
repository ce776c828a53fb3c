"""Google-style signed tokens for tests: a key pair, its certificate served from loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt
from google.auth import jwt as google_jwt

from tests.loopback import LoopbackServer, QuietHandler


def _key_and_cert(common_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private_pem, cert.public_bytes(serialization.Encoding.PEM)


class CertServer(LoopbackServer):
    """Serves ``{kid: PEM certificate}`` on loopback and counts the downloads."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.fetches = 0
        body = json.dumps(certs).encode()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
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
