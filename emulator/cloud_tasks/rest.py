"""The Cloud Tasks v2 REST API (HTTP/1.1, JSON) over the servicer the gRPC API uses.

The functions call Cloud Tasks over REST (``imagegen.task_queue``). A route
turns its path, query and JSON body into the gRPC method's request message
with ``google.protobuf.json_format`` (the API's own JSON mapping: camelCase
names, base64 bytes, enum names) and calls the same ``CloudTasksService``
method under the same lock, so both fronts share every rule (names refused
while in use, validation, queue settings, OIDC tokens). Errors are Google's
JSON with the canonical HTTP status of their code::

    {"error": {"code": 409, "message": "Requested entity already exists", "status": "ALREADY_EXISTS"}}

Routes: ``projects.locations.queues.tasks.create`` and ``.get``; anything else
is a 404 ``NOT_FOUND``. A request whose client hung up before the emulator
read it (it gave up while the emulator was stopped or slow) is dropped, not
run: Google's front end cancels it, and the gRPC API drops a call whose
deadline has passed the same way, so no task appears that its creator was
told had failed.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

import grpc
from google.cloud import tasks_v2
from google.protobuf import json_format

from emulator.cloud_tasks.queues import ApiError
from emulator.cloud_tasks.service import CloudTasksService

log = logging.getLogger("emulator.cloud_tasks")

_QUEUE = r"projects/[^/]+/locations/[^/]+/queues/[^/]+"
# google.rpc.Code -> HTTP status, as Google's REST APIs map them.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}  # fmt: skip


@dataclass(frozen=True)
class _Route:
    method: str
    path: re.Pattern[str]
    field: str
    """The request field the path's one group fills."""
    request_type: Any
    """The proto-plus request message."""
    call: Callable[[Any], Any]


def _error(code: grpc.StatusCode, message: str) -> tuple[int, dict[str, Any]]:
    status = _HTTP_STATUS.get(code, 500)
    return status, {"error": {"code": status, "message": message, "status": code.name}}


class RestServer(ThreadingHTTPServer):
    """Serves the REST routes on ``host:port`` (a loopback address: ``__main__`` checks)."""

    daemon_threads = True

    def __init__(self, host: str, port: int, service: CloudTasksService) -> None:
        self.service = service
        self.routes = (
            _Route("POST", re.compile(rf"/v2/({_QUEUE})/tasks"), "parent", tasks_v2.CreateTaskRequest, service.create_task),
            _Route("GET", re.compile(rf"/v2/({_QUEUE}/tasks/[^/]+)"), "name", tasks_v2.GetTaskRequest, service.get_task),
        )  # fmt: skip
        rest = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the functions' client reuses its connections
            disable_nagle_algorithm = True  # see emulator/__init__.py

            def do_GET(self) -> None:
                body = self._body()
                if self._client_gone():
                    log.info("%s %s dropped: its client hung up before the answer", self.command, self.path)
                    self.close_connection = True
                    return
                self._reply(*rest.answer(self.command, self.path, body))

            do_POST = do_DELETE = do_PATCH = do_GET

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length > 0 else b""

            def _client_gone(self) -> bool:
                """True when the connection is closed (readable, at its end) after the request."""
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:  # reset by the client
                    return True

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__((host, port), Handler)

    def answer(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body of one request."""
        path, _, query = target.partition("?")
        for route in self.routes:
            match = route.path.fullmatch(path)
            if match and route.method == method:
                break
        else:
            return _error(grpc.StatusCode.NOT_FOUND, f"{method} {path}: no such method in the emulator")
        try:
            fields = json.loads(body) if body.strip() else {}
            if not isinstance(fields, dict):
                raise ValueError("the body is not a JSON object")
            fields |= dict(parse_qsl(query)) | {route.field: unquote(match.group(1))}
            request = route.request_type.pb()()
            json_format.ParseDict(fields, request)
        except (ValueError, json_format.ParseError) as exc:
            return _error(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc}")
        try:
            with self.service.emulator.lock:
                response = route.call(route.request_type.wrap(request))
        except ApiError as exc:
            return _error(exc.code, exc.message)
        except Exception:
            log.exception("%s %s crashed", method, path)
            return _error(grpc.StatusCode.INTERNAL, "Internal error")
        return 200, json_format.MessageToDict(type(response).pb(response))

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="tasks-rest", daemon=True)
        thread.start()
        return thread
