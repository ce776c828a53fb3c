"""OIDC tokens like the ones Cloud Tasks attaches to HTTP tasks, signed by a local key.

Google signs Cloud Tasks' tokens (iss ``https://accounts.google.com``, aud, email,
email_verified, sub, azp, iat, exp; RS256 with a ``kid``) and publishes the
certificates as a ``{kid: PEM}`` map at ``https://www.googleapis.com/oauth2/v1/certs``.
The emulator does the same with a key of its own, kept in a file so that a
restarted emulator (and a test minting a token "the same way") use the same key,
and serves the map on loopback (``CertsServer``), for the task targets'
``OIDC_CERTS_URL``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://accounts.google.com"
CERTS_PATH = "/oauth2/v1/certs"
TOKEN_LIFETIME_SECONDS = 3600
CERTS_MAX_AGE_SECONDS = 300


def new_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def self_signed_cert_pem(private_pem: bytes, common_name: str) -> str:
    """A certificate of the key's public half for ``common_name`` (also its DNS name, so a
    loopback TLS server can use it), valid from yesterday to tomorrow."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_or_create_key(path: Path) -> bytes:
    """The PEM private key in ``path``, created (mode 0600) when the file does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pem = new_private_key_pem()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return pem


def service_account_id(email: str) -> str:
    """A stable 21-digit numeric id standing in for the account's unique id (``sub``, ``azp``)."""
    return str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]


class TokenMinter:
    """Mints Cloud Tasks-style OIDC tokens with one key; ``certs()`` is what verifiers fetch."""

    def __init__(self, private_pem: bytes) -> None:
        from google.auth import crypt

        key = serialization.load_pem_private_key(private_pem, password=None)
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha1(public_der).hexdigest()  # noqa: S324 (an identifier, not security)
        self._signer = crypt.RSASigner.from_string(private_pem, self.kid)
        self._certs = {self.kid: self_signed_cert_pem(private_pem, "cloud-tasks-emulator.local")}

    @classmethod
    def from_key_file(cls, path: Path) -> TokenMinter:
        return cls(load_or_create_key(path))

    def token(self, email: str, audience: str, now: float | None = None) -> str:
        from google.auth import jwt

        issued = int(time.time() if now is None else now)
        account_id = service_account_id(email)
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "azp": account_id,
            "sub": account_id,
            "email": email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
        }
        return jwt.encode(self._signer, claims, header={"kid": self.kid}).decode()

    def certs(self) -> dict[str, str]:
        return dict(self._certs)


class CertsServer(ThreadingHTTPServer):
    """Serves ``GET /oauth2/v1/certs`` -> ``{kid: PEM}`` on loopback, as Google does."""

    daemon_threads = True

    def __init__(self, host: str, port: int, minter: TokenMinter) -> None:
        body = json.dumps(minter.certs()).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != CERTS_PATH:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={CERTS_MAX_AGE_SECONDS}, must-revalidate")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__((host, port), Handler)

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="oidc-certs", daemon=True)
        thread.start()
        return thread
