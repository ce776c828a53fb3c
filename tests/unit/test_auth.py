"""Authentication without the stack: headers, config keys, AUTH_REQUIRED, Firebase tokens.

Firebase ID tokens are signed here with a throwaway RSA key whose self-signed
certificate a loopback HTTP server publishes (``FIREBASE_CERTS_URL``), the
way Google publishes its securetoken certificates.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from imagegen import google_tokens
from imagegen.api import auth, keys
from imagegen.api.auth import ANONYMOUS, AuthError, Principal, authenticate
from imagegen.api.keys import hash_key, new_key
from imagegen.config import load_settings
from tests.tokens import CertServer, TokenSigner, firebase_claims

PROJECT = "imagegen-auth-test"

_ENV = (
    "ENVIRONMENT", "AUTH_REQUIRED", "API_KEY_HASHES", "API_KEYS_COLLECTION", "GOOGLE_CLOUD_PROJECT",
    "FIREBASE_AUTH_ENABLED", "FIREBASE_PROJECT_ID", "FIREBASE_CERTS_URL", "RATE_LIMIT_PER_MINUTE",
)


def _no_firestore() -> None:
    raise AssertionError("unit tests must not reach Firestore (tests/integration/test_auth.py does)")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No auth setting from the developer's shell, an empty owner cache, and a Firestore tripwire.

    The tripwire fails at once where an unreachable Firestore would hang for minutes.
    """
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(keys, "_owners", keys._TtlCache(60, 16))
    monkeypatch.setattr(keys, "database", _no_firestore)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def settings_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()


def call(**headers: str) -> Principal:
    return authenticate(Headers({name.replace("_", "-"): value for name, value in headers.items()}))


def refused(expected_status: int, **headers: str) -> str:
    with pytest.raises(AuthError) as caught:
        call(**headers)
    assert caught.value.status == expected_status
    return caught.value.message


# --------------------------------------------------------------------------- keys and headers


@pytest.fixture
def alice_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A key of ``alice`` known only through API_KEY_HASHES (with ``bob`` beside it)."""
    key = new_key()
    entries = f" alice:{hash_key(key).upper()} , bob:{hash_key(new_key())},"
    settings_with(monkeypatch, API_KEY_HASHES=entries)
    return key


def test_new_keys_have_the_documented_shape() -> None:
    issued = {new_key() for _ in range(50)}
    assert len(issued) == 50
    for key in issued:
        assert keys.KEY_PATTERN.match(key) and len(key) == 36
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256


def test_config_keys_are_found_without_firestore(alice_key: str) -> None:
    assert keys.lookup(alice_key) == "alice"
    assert call(X_API_Key=alice_key) == Principal("key:alice", "api_key")
    assert call(Authorization=f"Bearer {alice_key}") == Principal("key:alice", "api_key")
    assert call(authorization=f"bearer   {alice_key} ") == Principal("key:alice", "api_key")


def test_api_key_hashes_format() -> None:
    a, b = "a" * 64, "b" * 64
    assert keys.parse_key_hashes("") == {}
    assert keys.parse_key_hashes(f"alice:{a}, ,team.x@y:{b.upper()},") == {a: "alice", b: "team.x@y"}


@pytest.mark.parametrize(
    "value", ["owner-without-hash", "alice:abc", "alice:" + "g" * 64, ":" + "a" * 64, "bad owner:" + "a" * 64]
)
def test_malformed_api_key_hashes_fail_loudly(value: str) -> None:
    with pytest.raises(ValueError):
        keys.parse_key_hashes(value)


def test_both_headers_are_refused_even_when_equal(alice_key: str) -> None:
    assert refused(400, Authorization=f"Bearer {alice_key}", X_API_Key=alice_key) == auth.AMBIGUOUS
    assert refused(400, Authorization=f"Bearer {alice_key}", X_API_Key="") == auth.AMBIGUOUS


@pytest.mark.parametrize(
    "headers, message",
    [
        ({"X_API_Key": "igk_not-a-key"}, auth.INVALID_KEY),
        ({"X_API_Key": ""}, auth.INVALID_KEY),
        ({"Authorization": "Bearer"}, auth.INVALID_KEY),
        ({"Authorization": "Bearer "}, auth.INVALID_KEY),
        ({"Authorization": "Bearer " + "x" * 5000}, auth.INVALID_KEY),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, auth.UNSUPPORTED_SCHEME),
        ({"Authorization": ""}, auth.UNSUPPORTED_SCHEME),
        # Firebase is off: a JWT is just something that is not an API key.
        ({"Authorization": "Bearer aaa.bbb.ccc"}, auth.INVALID_KEY),
    ],
)
def test_bad_credentials_are_401_even_when_auth_is_optional(headers: dict[str, str], message: str) -> None:
    assert not load_settings().auth_required
    assert refused(401, **headers) == message


def test_401_carries_www_authenticate_and_400_does_not() -> None:
    assert AuthError(401, auth.INVALID_KEY).headers == {"WWW-Authenticate": 'Bearer realm="imagegen"'}
    assert AuthError(400, auth.AMBIGUOUS).headers == {}


# --------------------------------------------------------------------------- AUTH_REQUIRED


@pytest.mark.parametrize(
    "environment, auth_required, expected",
    [
        (None, None, False),
        ("development", None, False),
        ("production", None, True),
        ("production", "false", False),
        ("development", "true", True),
        ("production", "", True),  # empty is unset
    ],
)
def test_auth_required_explicit_value_wins_over_environment(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, auth_required: str | None, expected: bool
) -> None:
    env = {"ENVIRONMENT": environment, "AUTH_REQUIRED": auth_required}
    settings_with(monkeypatch, **{name: value for name, value in env.items() if value is not None})
    assert load_settings().auth_required is expected
    if expected:
        assert refused(401) == auth.AUTH_REQUIRED
    else:
        assert call() == ANONYMOUS == Principal("anonymous", "anonymous")


def test_required_auth_still_accepts_good_credentials(monkeypatch: pytest.MonkeyPatch, alice_key: str) -> None:
    settings_with(monkeypatch, AUTH_REQUIRED="true")
    assert call(X_API_Key=alice_key).owner == "key:alice"


def test_new_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.firebase_auth_enabled, settings.firebase_certs_url) == (False, "")
    assert settings.firebase_project_id == settings.project == "imagegen-local"
    assert (settings.api_keys_collection, settings.api_key_hashes) == ("api_keys", "")
    assert settings.rate_limit_per_minute == 60
    settings_with(monkeypatch, GOOGLE_CLOUD_PROJECT="proj-a")
    assert load_settings().firebase_project_id == "proj-a"
    settings_with(monkeypatch, FIREBASE_PROJECT_ID="proj-b", RATE_LIMIT_PER_MINUTE="0")
    assert (load_settings().firebase_project_id, load_settings().rate_limit_per_minute) == ("proj-b", 0)


def test_owner_cache_expires_and_stays_bounded() -> None:
    cache = keys._TtlCache(ttl=0.2, size=3)
    for name in "abcd":
        cache.put(name, name.upper())
    assert [cache.get(name) for name in "abcd"] == [None, "B", "C", "D"]  # the oldest went first
    cache.discard("b")
    assert cache.get("b") is None
    time.sleep(0.25)
    assert cache.get("c") is None and cache.get("d") is None


# --------------------------------------------------------------------------- Firebase ID tokens


class Issuer(TokenSigner):
    """Signs Firebase-shaped ID tokens with the served key (or an unknown one)."""

    def token(self, signer: Any = None, **overrides: Any) -> str:
        claims = firebase_claims(PROJECT)
        for name, value in overrides.items():
            if value is None:
                claims.pop(name)
            else:
                claims[name] = value
        return self.sign(claims, signer)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def cert_server(issuer: Issuer) -> Iterator[CertServer]:
    server = CertServer({issuer.kid: issuer.cert_pem})
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def firebase(monkeypatch: pytest.MonkeyPatch, cert_server: CertServer, issuer: Issuer) -> Iterator[Issuer]:
    """Firebase auth on, audience PROJECT, certificates from the loopback server."""
    settings_with(
        monkeypatch,
        FIREBASE_AUTH_ENABLED="true",
        FIREBASE_PROJECT_ID=PROJECT,
        FIREBASE_CERTS_URL=cert_server.url,
        AUTH_REQUIRED="true",
    )
    google_tokens.certs_transport.cache_clear()
    yield issuer
    google_tokens.certs_transport.cache_clear()


def bearer(token: str) -> Principal:
    return call(Authorization=f"Bearer {token}")


def test_valid_firebase_token_gives_the_uid(firebase: Issuer) -> None:
    assert bearer(firebase.token()) == Principal("firebase:uid-123", "firebase")
    assert bearer(firebase.token(sub="other-user")).owner == "firebase:other-user"


def test_certificates_are_fetched_once_per_max_age(firebase: Issuer, cert_server: CertServer) -> None:
    before = cert_server.fetches
    for _ in range(3):
        bearer(firebase.token())
    assert cert_server.fetches == before + 1


def _tampered(token: str) -> str:
    """The same token claiming another ``sub``, with the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _later(seconds: int) -> int:
    return int(time.time()) + seconds


@pytest.mark.parametrize(
    "make, reason",
    [
        pytest.param(lambda i: i.token(aud="another-project"), "wrong audience", id="wrong-audience"),
        pytest.param(
            lambda i: i.token(iss="https://securetoken.google.com/another-project"), "wrong issuer", id="wrong-issuer"
        ),
        pytest.param(lambda i: i.token(iss="https://accounts.google.com"), "wrong issuer", id="google-issuer"),
        pytest.param(
            lambda i: i.token(aud="another-project", iss="https://securetoken.google.com/another-project"),
            "wrong audience",
            id="other-firebase-project",
        ),
        pytest.param(lambda i: i.token(exp=_later(-3600), iat=_later(-7200)), "expired", id="expired"),
        pytest.param(lambda i: i.token(iat=_later(600)), "too early", id="issued-in-the-future"),
        pytest.param(lambda i: i.token(auth_time=_later(600)), "auth_time", id="auth-time-in-the-future"),
        pytest.param(lambda i: i.token(auth_time=None), "auth_time", id="no-auth-time"),
        pytest.param(lambda i: i.token(sub=""), "sub", id="empty-sub"),
        pytest.param(lambda i: i.token(sub=None), "sub", id="no-sub"),
        pytest.param(lambda i: i.token(sub="x" * 129), "sub", id="sub-too-long"),
        pytest.param(lambda i: _tampered(i.token()), "signature", id="tampered"),
        pytest.param(lambda i: i.token(signer=i.stranger), "signature", id="unknown-signing-key"),
        pytest.param(lambda i: i.token().rsplit(".", 1)[0] + ".c2ln", "signature", id="bad-signature"),
        pytest.param(lambda i: "e30.e30.c2ln", "algorithm", id="empty-json-segments"),
        pytest.param(lambda i: "W10.W10.c2ln", "JSON object", id="json-arrays"),
    ],
)
def test_invalid_firebase_tokens_are_401(
    firebase: Issuer, caplog: pytest.LogCaptureFixture, make: Any, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger="imagegen.api.auth")
    assert refused(401, Authorization=f"Bearer {make(firebase)}") == auth.INVALID_FIREBASE_TOKEN
    [record] = [r for r in caplog.records if r.getMessage() == "firebase token refused"]
    assert reason in record.fields["reason"]  # type: ignore[attr-defined]


def test_firebase_tokens_are_refused_when_firebase_is_off(firebase: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_with(monkeypatch, FIREBASE_AUTH_ENABLED="false")
    assert refused(401, Authorization=f"Bearer {firebase.token()}") == auth.INVALID_KEY


def test_api_keys_still_work_with_firebase_on(firebase: Issuer, alice_key: str) -> None:
    assert call(Authorization=f"Bearer {alice_key}").owner == "key:alice"
    assert call(X_API_Key=alice_key).owner == "key:alice"


def test_firebase_token_in_x_api_key_is_not_a_key(firebase: Issuer) -> None:
    assert refused(401, X_API_Key=firebase.token()) == auth.INVALID_KEY
