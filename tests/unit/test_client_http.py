"""The Python client's HTTP behaviour against loopback servers: retries, Retry-After, errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.stack import free_port
from imagegen_client import (
    APIConnectionError,
    AsyncImageGenClient,
    ImageGenClient,
    RateLimitError,
    ServerError,
)
from tests.loopback import LoopbackServer, QuietHandler

STATUS = {"job_id": "img_abcdefgh", "status": "PENDING", "message": "En attente", "progress": 0,
          "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}


class Scripted(LoopbackServer):
    """Answers each request with the next scripted (status, headers, body), the last one forever."""

    def __init__(self, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[float, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                with server._lock:
                    server.seen.append((time.monotonic(), f"{self.command} {self.path}", dict(self.headers)))
                    status, headers, body = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
                self.reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"} | headers)

            do_GET = do_POST = _answer

        super().__init__(Handler, name="scripted-api")


def _sync(server: Scripted, call: Callable[[Any], Any], **options: Any) -> Any:
    with ImageGenClient(server.base_url, "igk_test", **options) as client:
        return call(client)


def _async(server: Scripted, call: Callable[[Any], Any], **options: Any) -> Any:
    async def run() -> Any:
        async with AsyncImageGenClient(server.base_url, "igk_test", **options) as client:
            return await call(client)

    return asyncio.run(run())


@pytest.fixture(params=[_sync, _async], ids=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return request.param


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def make(*answers: tuple[int, dict[str, str], Any]) -> Scripted:
        servers.append(Scripted(*answers))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_429_is_retried_after_the_servers_retry_after(run: Any, scripted: Any) -> None:
    limited = (429, {"Retry-After": "1"}, {"error": "Trop de tâches créées, réessayez dans 1 s", "details": []})
    server = scripted(limited, (200, {}, STATUS))
    status = run(server, lambda client: client.status("img_abcdefgh"))
    assert status.status.value == "PENDING"
    (first, path, headers), (second, _, _) = server.seen
    assert path == "GET /api/images/status/img_abcdefgh" and headers["Authorization"] == "Bearer igk_test"
    assert 0.95 <= second - first < 2.5, "waited what Retry-After said, not its own backoff"


def test_a_retry_after_past_the_bound_is_not_waited_for(run: Any, scripted: Any) -> None:
    server = scripted((429, {"Retry-After": "3600"}, {"error": "Trop de tâches créées, réessayez dans 3600 s"}))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        run(server, lambda client: client.create("Un phare"))
    assert time.monotonic() - started < 1 and len(server.seen) == 1
    error = caught.value
    assert (error.status_code, error.message, error.retry_after) == (429, "Trop de tâches créées, réessayez dans 3600 s", 3600)
    assert server.seen[0][2]["Idempotency-Key"], "creates carry a key, so that a retried create makes one job"


def test_503_retries_are_bounded_then_raise_the_french_message(run: Any, scripted: Any) -> None:
    message = "Service temporairement indisponible, réessayez dans quelques instants"
    server = scripted((503, {"Retry-After": "0"}, {"error": message, "details": []}))
    with pytest.raises(ServerError) as caught:
        run(server, lambda client: client.result("img_abcdefgh"), max_retries=3)
    assert (caught.value.status_code, caught.value.message) == (503, message)
    assert len(server.seen) == 4, "the first attempt and 3 retries"


def test_a_retried_create_keeps_its_idempotency_key(run: Any, scripted: Any) -> None:
    created = {"job_id": "img_abcdefgh", "status": "PENDING", "message": "Tâche créée"}
    server = scripted((503, {"Retry-After": "0"}, {"error": "indisponible"}), (202, {}, created))
    assert run(server, lambda client: client.create("Un phare", num_images=2)).job_id == "img_abcdefgh"
    keys = {headers["Idempotency-Key"] for _, _, headers in server.seen}
    assert len(server.seen) == 2 and len(keys) == 1


def test_an_unreachable_api_is_a_connection_error(run: Any) -> None:
    port = free_port()  # a port nobody listens on
    server = type("Nowhere", (), {"base_url": f"http://127.0.0.1:{port}"})()
    with pytest.raises(APIConnectionError) as caught:
        run(server, lambda client: client.status("img_abcdefgh"), max_retries=1)
    assert caught.value.status_code is None and str(port) in caught.value.message
