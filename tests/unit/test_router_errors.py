"""What the API answers when a handler fails, and strict query parsing, without the stack.

Requests go through ``router.handle`` with Flask's test request context; the
caller is anonymous (``AUTH_REQUIRED`` off), so nothing reaches Firestore
before the checks under test.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import httpx2
import pytest
from google.api_core import exceptions as api_exceptions
from google.api_core.exceptions import RetryError

from imagegen.api import router
from imagegen.config import load_settings
from imagegen.google_api import errors
from imagegen.http import ascii_int, is_infrastructure_error

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
app = flask.Flask(__name__)


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ENVIRONMENT", "AUTH_REQUIRED", "API_KEY_HASHES", "FIREBASE_AUTH_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def call(path: str, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    with app.test_request_context(path, query_string=query):
        response = router.handle(flask.request)
    return response.status_code, json.loads(response.get_data()), response.headers


@pytest.mark.parametrize(
    "limit",
    ["²", "١٢", "１０", "0", "101", "-1", "+5", " 5", "5 ", "5\n", "1e1", "0x10", "5.0", "", "9" * 40],
)
def test_limit_accepts_ascii_digits_only(limit: str) -> None:
    assert call("/api/images/jobs", {"limit": limit})[:2] == (
        400, {"error": "limit doit être entre 1 et 100", "details": []}
    )


@pytest.mark.parametrize("status", ["pending", "PENDING\n", "DONE", "COMPLETED,FAILED", "ＰＥＮＤＩＮＧ"])
def test_status_is_one_exact_value(status: str) -> None:
    code, body, _ = call("/api/images/jobs", {"status": status})
    assert code == 400 and body["error"].startswith("status doit être l'une des valeurs")


def boom(exc: BaseException) -> Any:
    def handler(*_args: Any, **_kwargs: Any) -> flask.Response:
        raise exc

    return handler


def test_a_bug_is_a_500_with_a_json_body_and_its_stack_trace_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(router._HANDLERS, "health", boom(KeyError("oops")))
    with caplog.at_level(logging.ERROR, logger=router.__name__):
        code, body, headers = call("/health")
    assert (code, body) == (500, {"error": "Erreur interne du serveur", "details": []})
    assert "Retry-After" not in headers
    (record,) = [r for r in caplog.records if r.name == router.__name__]
    assert record.levelno == logging.ERROR and record.exc_info and record.exc_info[0] is KeyError


@pytest.mark.parametrize(
    "exc",
    [
        api_exceptions.ServiceUnavailable("down"),
        RetryError("Timeout of 15.0s exceeded", None),
        errors.Unavailable("down", http_status=503),
        errors.NotFound("no such queue", http_status=404),
        httpx2.ConnectError("refused"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("timed out"),
    ],
)
def test_an_infrastructure_error_is_a_503_to_retry(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    monkeypatch.setitem(router._HANDLERS, "health", boom(exc))
    code, body, headers = call("/health")
    assert (code, body["error"], headers["Retry-After"]) == (503, router.UNAVAILABLE, "5")


@pytest.mark.parametrize("exc", [KeyError("x"), TypeError("x"), ValueError("x"), AttributeError("x"), ZeroDivisionError()])
def test_programming_errors_are_not_infrastructure(exc: Exception) -> None:
    assert not is_infrastructure_error(exc)


def test_the_check_imports_no_client_library() -> None:
    """Only libraries already loaded are asked: an error of one never imported cannot exist."""
    script = (
        "import sys; from imagegen.http import is_infrastructure_error as check; "
        "assert not check(KeyError()) and check(TimeoutError()); "
        "print(sorted(m for m in ('grpc', 'google.api_core', 'httpx2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=FUNCTIONS, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("7", 7), ("0", 0), ("020", 20), ("²", None), ("١", None), (" 7", None), ("7\n", None),
     ("-1", None), ("", None), (None, None), ("1" * 19, None)],
)
def test_ascii_int_accepts_only_ascii_digits(raw: str | None, expected: int | None) -> None:
    assert ascii_int(raw) == expected
