"""Fuzzing the running API from its own OpenAPI document, then hostile requests by hand.

Part 1 lets schemathesis generate requests (valid and invalid) for every
operation of ``/openapi.json`` and checks each answer: never a 5xx, and a
status code, content type and body that the document declares. Jobs it
creates (202) are cancelled at once, so the sequential task queue is not
left with a backlog for the next tests.

Part 2 sends what a generator does not: oversized and deeply nested bodies,
control characters and broken Unicode, path traversal in ids, wrong methods,
oversized headers. Cases already in ``test_api_errors.py`` are not repeated.

``FUZZ_SEED`` and ``FUZZ_EXAMPLES`` (environment) override the fixed seed and
the examples per operation, e.g. for a longer local fuzzing session.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emulator.stack import HOST, PORTS, Stack
from tests.integration.helpers import create_job
from tests.integration.web_build import web_build  # noqa: F401  (fixture)

FUZZ_CONFIG = f"""
seed = {int(os.environ.get("FUZZ_SEED", "20261125"))}
[generation]
mode = "all"
max-examples = {int(os.environ.get("FUZZ_EXAMPLES", "50"))}
database = "none"
[phases.stateful]
enabled = false
"""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
JSON_TYPE = "application/json"
TOO_LARGE = "Requête trop volumineuse (maximum 65536 octets)"
INVALID_JSON = "Corps JSON invalide"
CONTROL_CHARS = "Le prompt contient des caractères de contrôle non autorisés"
NOT_ALLOWED = "Méthode non autorisée"


# --------------------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def api_schema(stack: Stack) -> Any:
    config = schemathesis.Config.from_str(FUZZ_CONFIG)
    return schemathesis.openapi.from_url(stack.urls["openapi"], config=config, timeout=30)


@pytest.fixture(scope="module")
def fuzz_session(stack: Stack, web_build: None) -> Iterator[requests.Session]:
    """The fuzzer's session; the playground bundle is built first (``/playground`` is fuzzed too)."""
    with requests.Session() as session:
        yield session


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, fuzz_session: requests.Session, stack: Stack) -> None:
    response = case.call_and_validate(session=fuzz_session, checks=CHECKS, timeout=30)
    if case.method.upper() == "POST" and case.path == "/api/images/generate" and response.status_code == 202:
        credentials = {
            name: value for name, value in (case.headers or {}).items()
            if name.lower() in ("authorization", "x-api-key")
        }  # fmt: skip
        job_id = response.json()["job_id"]
        fuzz_session.post(f"{stack.urls['api']}/api/images/cancel/{job_id}", headers=credentials, timeout=30)


# --------------------------------------------------------------------------- helpers


def post_body(api: Any, data: bytes | str | Any) -> requests.Response:
    return api.post("/api/images/generate", data=data, headers={"Content-Type": JSON_TYPE})


def assert_json_error(response: requests.Response, status: int | tuple[int, ...], error: str | None = None) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith(JSON_TYPE), response.headers.get("Content-Type")
    if error is not None:
        assert response.json()["error"] == error


def cancel(api: Any, response: requests.Response) -> None:
    """A job this file created only to check a 202: stop it before it costs model calls."""
    api.post(f"/api/images/cancel/{response.json()['job_id']}")


def raw_request(head: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send a hand-made request (no client normalization); (status, body) of the answer."""
    with socket.create_connection((HOST, PORTS["api"]), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# --------------------------------------------------------------------------- sizes and nesting


def test_a_10_mb_body_is_refused_with_413_at_once(api: Any) -> None:
    body = b'{"prompt": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    started = time.monotonic()
    response = post_body(api, body)
    assert_json_error(response, 413, TOO_LARGE)
    assert time.monotonic() - started < 10
    assert api.get("/health").status_code == 200


def test_a_10_mb_chunked_body_is_refused_without_hanging(api: Any) -> None:
    chunk = b"a" * 65536

    def body() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        yield b'{"prompt": "'
        for _ in range(160):
            yield chunk
        yield b'"}'

    started = time.monotonic()
    assert_json_error(post_body(api, body()), 413, TOO_LARGE)
    assert time.monotonic() - started < 10
    assert api.get("/health").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"a":' * 10_000 + "1" + "}" * 10_000,  # 60 KB of nested objects, under the size limit
        '{"prompt": ' + "[" * 30_000 + "]" * 30_000 + "}",  # nested inside a field
    ],
    ids=["objects-10k", "prompt-arrays-30k"],
)
def test_deep_nesting_under_the_size_limit_is_invalid_json(api: Any, body: str) -> None:
    assert len(body) < 65536
    assert_json_error(post_body(api, body), 400, INVALID_JSON)


def test_moderate_nesting_reaches_validation(api: Any) -> None:
    response = post_body(api, '{"prompt": ' + "[" * 50 + "]" * 50 + "}")
    assert_json_error(response, 400, "Prompt requis")


# --------------------------------------------------------------------------- characters


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
)
def test_control_characters_in_the_prompt_are_refused(api: Any, char: str) -> None:
    response = api.post("/api/images/generate", json={"prompt": f"Un chat{char}astronaute"})
    assert_json_error(response, 400, CONTROL_CHARS)
    assert response.json()["details"] == [{"field": "prompt", "message": CONTROL_CHARS}]


def test_raw_control_characters_inside_a_json_string_are_invalid_json(api: Any) -> None:
    assert_json_error(post_body(api, b'{"prompt": "Un chat\x00astronaute"}'), 400, INVALID_JSON)


def test_nul_in_an_enum_field_is_refused(api: Any) -> None:
    response = api.post("/api/images/generate", json={"prompt": "Un chat", "style": "artistic\x00"})
    assert_json_error(response, 400)
    assert [d["field"] for d in response.json()["details"]] == ["style"]


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_tab_and_line_breaks_are_allowed(api: Any, char: str) -> None:
    response = api.post("/api/images/generate", json={"prompt": f"Un chat{char}astronaute"})
    assert response.status_code == 202, response.text
    cancel(api, response)


@pytest.mark.parametrize(
    "body",
    [
        rb'{"prompt": "Un chat \ud800"}',  # lone high surrogate (JSON escape)
        rb'{"prompt": "\udfff"}',  # lone low surrogate
        rb'{"prompt": "\udc00\ud800"}',  # a pair in the wrong order
        rb'{"prompt": "Un chat", "\ud800": 1}',  # in a key
        b'{"prompt": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 (CESU-8)
        b'{"prompt": "\xc0\xaf"}',  # overlong encoding of "/"
        b'{"prompt": "\x80abc"}',  # lone continuation byte
        b'{"prompt": "\xe2\x82"}',  # truncated sequence
        b'{"prompt": "\xf8\x88\x80\x80\x80"}',  # 5-byte form
    ],
    ids=["high", "low", "reversed", "key", "cesu8", "overlong", "continuation", "truncated", "5-byte"],
)
def test_lone_surrogates_and_invalid_utf8_are_refused(api: Any, body: bytes) -> None:
    assert_json_error(post_body(api, body), 400)


def test_emoji_prompt_at_the_length_boundary(api: Any, standin: Any) -> None:
    too_long = api.post("/api/images/generate", json={"prompt": "😀" * 4001})
    assert_json_error(too_long, 400, "Le prompt ne doit pas dépasser 4000 caractères")
    # The stand-in would take minutes to word-wrap 4000 emoji without a space
    # (see emulator/gemini_standin.py ``_wrap``): a fault answers before it draws.
    standin.configure(faults=[{"kind": "invalid_key", "match": "😀" * 8, "times": None}])
    job_id = create_job(api, prompt="😀" * 4000)  # 16 KB of UTF-8, 48 KB of JSON escapes
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    [call] = standin.calls()
    assert call["prompt"].count("😀") == 4000  # reached the model whole, through Firestore and the SDK


def test_a_4000_code_point_emoji_prompt_completes(api: Any, standin: Any) -> None:
    prompt = ("😀🚀🐱 " * 1000).strip() + "🌧"
    assert len(prompt) == 4000
    job_id = create_job(api, prompt=prompt, size="512x512")
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["images"][0]["description"] == prompt


# --------------------------------------------------------------------------- paths and methods

HOSTILE_IDS = [
    "..%2f..%2fetc%2fpasswd",
    "..%2F",
    "%2e%2e%2f%2e%2e%2f",
    "img_abcdefgh%2F..%2F..",
    "..",
    ".",
    "%00",
    "img_abcdefgh%00",
    "img_abcdefgh%0A",  # a newline: functions-framework's own routing must not answer in HTML
    "img_abcdefgh%0D%0AX-Injected:%201",
    "%C0%AE%C0%AE%2F",
    "%ff%fe",
    "img_abcdefgh%ED%A0%80",
    "img_ABCDEFGH",
    "img_" + "a" * 64,
    "a" * 8000,
]


@pytest.mark.parametrize("job_id", HOSTILE_IDS, ids=[i[:24] for i in HOSTILE_IDS])
@pytest.mark.parametrize(
    ("method", "route"), [("GET", "status"), ("GET", "result"), ("POST", "cancel")]
)
def test_hostile_job_ids_are_not_found(api: Any, method: str, route: str, job_id: str) -> None:
    assert_json_error(api.request(method, f"/api/images/{route}/{job_id}"), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/generated_images/img_abcdefgh/..%2f..%2fetc%2fpasswd",
        "/generated_images/..%2f../image_1.png",
        "/generated_images/img_abcdefgh/image_1.png%00.png",
        "/generated_images/img_abcdefgh%00/image_1.png",
        "/generated_images/img_abcdefgh/image_1.png%0A",
        "/generated_images/img_abcdefgh/image_5.png",
        "/generated_images/img_abcdefgh/" + "a" * 8000,
        "/generated_images/%2e%2e/%2e%2e",
    ],
)
def test_hostile_image_paths_are_not_found(api: Any, path: str) -> None:
    assert_json_error(api.get(path), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/status/../../etc/passwd",
        "/generated_images/../../etc/passwd",
        "/api/images/status/img_abcdefgh/../../../health",
        "/generated_images/img_abcdefgh/../../../../etc/passwd",
        "/api/images/status/%",
    ],
)
def test_literal_dot_segments_are_not_found(stack: Stack, path: str) -> None:
    status, body = raw_request(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    assert status == 404, body[:200]
    assert "error" in json.loads(body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *[
            (method, path)
            for method in ("PUT", "DELETE", "PATCH")
            for path in (
                "/api/images/generate",
                "/api/images/status/img_abcdefgh",
                "/api/images/result/img_abcdefgh",
                "/api/images/cancel/img_abcdefgh",
                "/api/images/jobs",
                "/health",
                "/openapi.json",
                "/generated_images/img_abcdefgh/image_1.png",
            )
        ],
        ("GET", "/api/images/cancel/img_abcdefgh"),
        ("POST", "/api/images/status/img_abcdefgh"),
        ("POST", "/api/images/result/img_abcdefgh"),
        ("POST", "/api/images/jobs"),
        ("POST", "/health"),
        ("TRACE", "/health"),
        ("BREW", "/api/images/generate"),
    ],
)
def test_wrong_methods_are_405_json(api: Any, method: str, path: str) -> None:
    assert_json_error(api.request(method, path), 405, NOT_ALLOWED)


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "headers",
    [
        {f"X-Filler-{i}": "v" for i in range(200)},  # over gunicorn's 100 header fields
        {"X-Long": "a" * 100_000},  # over its 8190 bytes per field
        {f"X-Filler-{i}": "a" * 8000 for i in range(90)},  # 720 KB of headers
    ],
    ids=["200-headers", "100kb-header", "720kb-headers"],
)
def test_oversized_headers_are_refused_gracefully(api: Any, headers: dict[str, str]) -> None:
    started = time.monotonic()
    try:
        response = api.get("/api/images/status/img_abcdefgh", headers=headers, timeout=30)
    except requests.ConnectionError:
        pass  # closing the connection is a graceful refusal too
    else:
        assert 400 <= response.status_code < 500, response.status_code
    assert time.monotonic() - started < 10
    assert api.get("/health").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + "a" * 6000},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Bearer \u00e9\u00ff"},
        {"X-API-Key": ""},
        {"X-API-Key": "igk_" + "\u00e9" * 40},
        {"Authorization": "Bearer igk_x", "X-API-Key": "igk_x"},
    ],
    ids=["basic", "empty-bearer", "long-bearer", "fake-jwt", "latin1", "empty-key", "latin1-key", "both"],
)
def test_hostile_credentials_are_4xx(api: Any, headers: dict[str, str]) -> None:
    headers = {name: value.encode("latin-1") for name, value in headers.items()}
    for method, path in (("POST", "/api/images/generate"), ("GET", "/api/images/status/img_abcdefgh")):
        response = api.request(method, path, json={"prompt": "Un chat"}, headers=headers)
        assert_json_error(response, (400, 401))


# --------------------------------------------------------------------------- query strings


@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",  # ² : str.isdigit() says yes, int() says no
        "limit=%D9%A1%D9%A2",  # Arabic-Indic digits
        "limit=%EF%BC%91%EF%BC%90",  # fullwidth 10
        "limit=5%0A",
        "limit=%205",
        "limit=%2B5",
        "limit=-1",
        "limit=1e1",
        "limit=0x10",
        "limit=" + "9" * 400,
        "limit=",
        "limit=%FF",
        "status=pending",
        "status=PENDING%0A",
        "status=%00",
        "cursor=img_abcdefgh%0A",
        "cursor=img_%C2%B2bcdefgh",
        "cursor=%00",
    ],
)
def test_hostile_list_parameters_are_400(stack: Stack, query: str) -> None:
    head = f"GET /api/images/jobs?{query} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    status, body = raw_request(head.encode())
    assert status == 400, body[:300]
    assert json.loads(body)["error"]


@pytest.mark.parametrize("token", ["s\u00e9cret".encode(), "\u2603".encode(), b"\xff\xfe"])
def test_a_non_ascii_task_token_is_401(stack: Stack, token: bytes) -> None:
    response = requests.post(
        f"{stack.urls['worker']}/", json={"job_id": "img_abcdefgh"}, headers={"Authorization": b"Bearer " + token},
        timeout=10,
    )
    assert response.status_code == 401, response.text[:300]
    assert response.json()["error"] == "Appel non autorisé"
