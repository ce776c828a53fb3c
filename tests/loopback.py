"""A tiny HTTP server on 127.0.0.1 for tests: input images, webhook receivers, certificates."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers in one call."""

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """Serve ``handler`` on an ephemeral loopback port from a daemon thread until ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str = "loopback") -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver(LoopbackServer):
    """Webhook receiver: records every POST per path; answers the statuses
    programmed for that path in order, then 200."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._received: dict[str, list[Received]] = {}
        self._answers: dict[str, list[int]] = {}
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                status = receiver._record(self.path, Received(dict(self.headers.items()), self.body()))
                self.reply(status)

        super().__init__(Handler, name="webhook-receiver")

    def _record(self, path: str, received: Received) -> int:
        with self._lock:
            self._received.setdefault(path, []).append(received)
            self._lock.notify_all()
            answers = self._answers.get(path, [200])
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def url(self, *answers: int) -> str:
        """A fresh path answering ``answers`` in order, then 200 forever."""
        path = f"/hooks/{uuid.uuid4().hex}"
        with self._lock:
            self._answers[path] = [*answers, 200]
        return self.base_url + path

    def received(self, url: str) -> list[Received]:
        with self._lock:
            return list(self._received.get(url.removeprefix(self.base_url), []))

    def wait(self, url: str, count: int, timeout: float = 60) -> list[Received]:
        path = url.removeprefix(self.base_url)
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received.get(path, [])) >= count, timeout):
                got = len(self._received.get(path, []))
                raise AssertionError(f"{got} webhook(s) on {path} after {timeout} s, expected {count}")
            return list(self._received[path])
