"""The local Cloud Tasks emulator (``emulator.cloud_tasks``) dispatches like Cloud Tasks.

One emulator process for the module, started by its real command line on
ephemeral loopback ports, driven through the google-cloud-tasks GAPIC client
(gRPC), and through its REST API (the one the functions call) at the end;
each test creates its own queue with the settings it needs and points its
tasks at a loopback ``Target``.
"""

from __future__ import annotations

import base64
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions

from emulator.cloud_tasks.config import infra_queues
from emulator.cloud_tasks.oidc import CERTS_PATH
from emulator.stack import free_port
from tests.loopback import LoopbackServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]
PROJECT, LOCATION = "emulator-test", "here"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
ACCOUNT = "tasks-invoker@emulator-test.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Hit:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class Target(LoopbackServer):
    """Records every request (time, headers, body) and the peak number served at once.

    A path answers its script of ``(status, seconds to wait first)`` in order, the
    last entry forever (default: 200 at once).
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.hits: list[Hit] = []
        self.active = 0
        self.peak = 0
        self._scripts: dict[str, list[tuple[int, float]]] = {}
        target = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                status, wait = target._enter(Hit(time.monotonic(), self.path, dict(self.headers.items()), self.body()))
                try:
                    time.sleep(wait)
                    self.reply(status)
                except OSError:
                    pass  # the emulator gave up on this request (dispatch deadline)
                finally:
                    target._leave()

            do_GET = do_POST

        super().__init__(Handler, name="tasks-target")

    def _enter(self, hit: Hit) -> tuple[int, float]:
        with self.lock:
            self.hits.append(hit)
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.lock.notify_all()
            script = self._scripts.get(hit.path, [(200, 0.0)])
            return script.pop(0) if len(script) > 1 else script[0]

    def _leave(self) -> None:
        with self.lock:
            self.active -= 1

    def url(self, *script: tuple[int, float]) -> str:
        path = f"/t/{uuid.uuid4().hex}"
        with self.lock:
            self._scripts[path] = list(script) or [(200, 0.0)]
        return self.base_url + path

    def wait(self, url: str, count: int, timeout: float = 30) -> list[Hit]:
        path = url.removeprefix(self.base_url)
        with self.lock:
            ok = self.lock.wait_for(lambda: len(self.of(path)) >= count, timeout)
            hits = self.of(path)
        assert ok, f"{len(hits)} request(s) on {path} after {timeout} s, expected {count}"
        return hits

    def of(self, url: str) -> list[Hit]:
        path = url.removeprefix(self.base_url)
        return [hit for hit in self.hits if hit.path == path]


@dataclass
class Emulator:
    client: Any
    ports: tuple[int, int, int]
    """gRPC, REST, certificates."""
    rest_url: str
    certs_url: str
    process: subprocess.Popen[bytes]

    def queue(self, **settings: Any) -> str:
        """A new queue; ``settings`` are ``rate_limits`` / ``retry_config`` fields (durations in seconds)."""
        from google.cloud import tasks_v2

        rate = {k: settings.pop(k) for k in ("max_dispatches_per_second", "max_concurrent_dispatches") if k in settings}
        retry = {k: timedelta(seconds=v) if k.endswith(("backoff", "duration")) else v for k, v in settings.items()}
        name = f"{PARENT}/queues/q-{uuid.uuid4().hex[:12]}"
        queue = tasks_v2.Queue(name=name, rate_limits=rate, retry_config=retry)
        return self.client.create_queue(parent=PARENT, queue=queue, timeout=10).name

    def task(self, queue: str, url: str, name: str = "", **fields: Any) -> Any:
        task: dict[str, Any] = {"http_request": {"url": url, **fields.pop("http", {})}, **fields}
        if name:
            task["name"] = f"{queue}/tasks/{name}"
        return self.client.create_task(parent=queue, task=task, timeout=10)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    port, rest_port, certs_port = free_port(), free_port(), free_port()
    key = tmp_path_factory.mktemp("tasks-emulator") / "key.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cloud_tasks", "--port", str(port), "--rest-port", str(rest_port),
         "--certs-port", str(certs_port),
         "--project", PROJECT, "--location", LOCATION, "--queue", "image-jobs", "--queue", "webhook-deliveries",
         "--oidc-key-file", str(key)],
        cwd=ROOT,
    )  # fmt: skip
    certs_url = f"http://127.0.0.1:{certs_port}{CERTS_PATH}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(certs_url, timeout=1).raise_for_status()
            break
        except requests.RequestException:
            assert process.poll() is None and time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        yield Emulator(client, (port, rest_port, certs_port), f"http://127.0.0.1:{rest_port}", certs_url, process)
    finally:
        channel.close()
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    server = Target()
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- queues


def test_the_stack_queues_have_infra_settings_and_listen_on_loopback_only(emulator: Emulator) -> None:
    infra = infra_queues(ROOT / "infra")
    jobs = emulator.client.get_queue(name=f"{PARENT}/queues/image-jobs", timeout=10)
    assert (jobs.rate_limits.max_dispatches_per_second, jobs.rate_limits.max_concurrent_dispatches) == (
        infra["image-jobs"].max_dispatches_per_second,
        infra["image-jobs"].max_concurrent_dispatches,
    )
    retry = jobs.retry_config
    assert (retry.max_attempts, retry.min_backoff, retry.max_backoff, retry.max_doublings) == (
        10, timedelta(seconds=60), timedelta(seconds=300), 4
    )  # fmt: skip
    hooks = emulator.client.get_queue(name=f"{PARENT}/queues/webhook-deliveries", timeout=10)
    assert hooks.retry_config.max_retry_duration == timedelta(days=1)
    assert hooks.rate_limits.max_concurrent_dispatches == infra["webhook-deliveries"].max_concurrent_dispatches
    names = {q.name.rsplit("/", 1)[1] for q in emulator.client.list_queues(parent=PARENT, timeout=10)}
    assert {"image-jobs", "webhook-deliveries"} <= names

    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    # gRPC listens on an IPv6 socket bound to the IPv4-mapped loopback address.
    local = [line.split()[3].replace("[::ffff:127.0.0.1]", "127.0.0.1") for line in listening.splitlines()]
    for port in emulator.ports:  # gRPC, REST and certificates
        assert [a for a in local if a.rsplit(":", 1)[1] == str(port)] == [f"127.0.0.1:{port}"]


def test_unknown_queue_and_bad_tasks_are_refused(emulator: Emulator, target: Target) -> None:
    with pytest.raises(exceptions.NotFound):
        emulator.task(f"{PARENT}/queues/nope", target.url())
    queue = emulator.queue()
    with pytest.raises(exceptions.InvalidArgument):
        emulator.task(queue, target.url(), dispatch_deadline=timedelta(seconds=10))
    with pytest.raises(exceptions.InvalidArgument):
        emulator.task(queue, target.url(), name="not/valid")
    with pytest.raises(exceptions.InvalidArgument):
        emulator.task(queue, "ftp://127.0.0.1/")


# --------------------------------------------------------------------------- concurrency and rate


def test_dispatches_run_concurrently_up_to_max_concurrent_dispatches(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(max_concurrent_dispatches=3, max_dispatches_per_second=500)
    url = target.url((200, 1.0))
    started = time.monotonic()
    for _ in range(8):
        emulator.task(queue, url)
    hits = target.wait(url, 8)
    with target.lock:
        peak = target.peak
    assert peak == 3  # the target is used by this test only: 3 at once, never more
    arrivals = sorted(hit.at - started for hit in hits)
    assert max(arrivals[:3]) < 0.8  # the first three together
    assert arrivals[3] >= 0.9 and arrivals[6] >= 1.9  # the others as slots free up

    fewer = target.url((200, 1.0))
    wide = emulator.queue(max_concurrent_dispatches=10, max_dispatches_per_second=500)
    for _ in range(5):
        emulator.task(wide, fewer)
    five = target.wait(fewer, 5)
    assert max(h.at for h in five) - min(h.at for h in five) < 0.5  # all five at once


def test_dispatch_rate_follows_the_token_bucket(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(max_dispatches_per_second=5, max_concurrent_dispatches=100)
    burst = emulator.client.get_queue(name=queue, timeout=10).rate_limits.max_burst_size
    assert burst == 5
    url = target.url()
    for _ in range(15):
        emulator.task(queue, url)
    hits = target.wait(url, 15)
    first = hits[0].at
    for index, hit in enumerate(hits):
        earliest = max(0, index - burst + 1) / 5
        assert hit.at - first >= earliest - 0.05, (index, hit.at - first)
    assert hits[-1].at - first < 2.0 + 0.6  # 5 at once, then one every 0.2 s


def test_a_new_task_is_dispatched_at_once(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue()
    delays = []
    for _ in range(10):
        url = target.url()
        created = time.monotonic()
        emulator.task(queue, url)
        delays.append(target.wait(url, 1)[0].at - created)
    assert statistics.median(delays) < 0.05, delays  # no polling interval


# --------------------------------------------------------------------------- retries


def test_failures_are_retried_with_exponential_backoff_until_max_attempts(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(min_backoff=0.2, max_backoff=1.0, max_doublings=2, max_attempts=6)
    url = target.url((500, 0.0))
    task = emulator.task(queue, url, name="always-fails")
    hits = target.wait(url, 6)
    gaps = [later.at - earlier.at for earlier, later in zip(hits, hits[1:])]
    expected = [0.2, 0.4, 0.8, 1.0, 1.0]  # doubles twice, then (0.8 * 2) capped at max_backoff
    for gap, wanted in zip(gaps, expected):
        assert wanted - 0.02 <= gap <= wanted + 0.3, (gaps, expected)
    assert [h.headers["X-CloudTasks-TaskRetryCount"] for h in hits] == ["0", "1", "2", "3", "4", "5"]
    assert [h.headers.get("X-CloudTasks-TaskPreviousResponse") for h in hits] == [None] + ["500"] * 5
    time.sleep(1.5)
    assert len(target.of(url)) == 6  # max_attempts spent: no seventh attempt
    with pytest.raises(exceptions.NotFound):
        emulator.client.get_task(name=task.name, timeout=10)


def test_backoff_grows_linearly_after_max_doublings(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(min_backoff=0.1, max_backoff=10, max_doublings=1, max_attempts=5)
    url = target.url((503, 0.0))
    emulator.task(queue, url)
    hits = target.wait(url, 5)
    gaps = [later.at - earlier.at for earlier, later in zip(hits, hits[1:])]
    for gap, wanted in zip(gaps, [0.1, 0.2, 0.4, 0.6]):  # 0.1, doubled once, then + 0.2 each time
        assert wanted - 0.02 <= gap <= wanted + 0.3, gaps


def test_a_success_ends_the_retries_and_the_task(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(min_backoff=0.1, max_backoff=1)
    url = target.url((500, 0.0), (429, 0.0), (200, 0.0))
    task = emulator.task(queue, url, name="third-time-lucky")
    target.wait(url, 3)
    time.sleep(0.5)
    assert len(target.of(url)) == 3
    with pytest.raises(exceptions.NotFound):
        emulator.client.get_task(name=task.name, timeout=10)


# --------------------------------------------------------------------------- schedule and deadline


def test_schedule_time_is_honoured(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue()
    later, now = target.url(), target.url()
    eta = datetime.now(UTC) + timedelta(seconds=1.5)
    created = time.monotonic()
    task = emulator.task(queue, later, schedule_time=eta)
    assert task.schedule_time == eta
    emulator.task(queue, now)
    (first,) = target.wait(now, 1)
    (scheduled,) = target.wait(later, 1)
    assert first.at < scheduled.at
    assert 1.45 <= scheduled.at - created <= 2.0
    assert abs(float(scheduled.headers["X-CloudTasks-TaskETA"]) - eta.timestamp()) < 1e-3


def test_a_dispatch_is_cut_at_its_deadline_and_retried(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(min_backoff=0.1, max_backoff=1)
    url = target.url((200, 30.0), (200, 0.0))  # the first attempt would answer after 30 s
    task = emulator.task(queue, url, dispatch_deadline=timedelta(seconds=15))
    assert task.dispatch_deadline == timedelta(seconds=15)
    first, second = target.wait(url, 2, timeout=25)
    assert 15.0 <= second.at - first.at <= 16.5
    assert second.headers["X-CloudTasks-TaskRetryCount"] == "1"
    assert second.headers["X-CloudTasks-TaskExecutionCount"] == "0"  # no answer came back
    assert "X-CloudTasks-TaskPreviousResponse" not in second.headers
    default = emulator.task(queue, target.url())
    assert default.dispatch_deadline == timedelta(minutes=10)  # Cloud Tasks' default


# --------------------------------------------------------------------------- what a target receives


def test_targets_get_cloud_tasks_headers_and_the_task_body(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue(min_backoff=0.1, max_backoff=1)
    url = target.url((404, 0.0), (500, 0.0), (200, 0.0))
    headers = {"Content-Type": "application/json", "X-Custom": "kept", "User-Agent": "replaced", "Host": "evil"}
    task = emulator.task(queue, url, name="job-42", http={"headers": headers, "body": b'{"job_id": "42"}'})
    hits = target.wait(url, 3)
    short_queue = queue.rsplit("/", 1)[1]
    for retry, hit in enumerate(hits):
        assert hit.body == b'{"job_id": "42"}'
        assert hit.headers["X-CloudTasks-QueueName"] == short_queue
        assert hit.headers["X-CloudTasks-TaskName"] == "job-42"
        assert hit.headers["X-CloudTasks-TaskRetryCount"] == str(retry)
        assert float(hit.headers["X-CloudTasks-TaskETA"]) > 0
        assert (hit.headers["Content-Type"], hit.headers["X-Custom"]) == ("application/json", "kept")
        assert hit.headers["User-Agent"] == "Google-Cloud-Tasks"
        assert hit.headers["Host"] == f"127.0.0.1:{target.port}"
        assert "Authorization" not in hit.headers  # no oidc_token asked for
    # A response below 500 counts as an execution; a 5xx does not.
    assert [h.headers["X-CloudTasks-TaskExecutionCount"] for h in hits] == ["0", "1", "1"]
    assert [h.headers.get("X-CloudTasks-TaskPreviousResponse") for h in hits] == [None, "404", "500"]
    assert task.name == f"{queue}/tasks/job-42"

    unnamed = target.url()
    created = emulator.task(queue, unnamed)
    (hit,) = target.wait(unnamed, 1)
    assert hit.headers["X-CloudTasks-TaskName"] == created.name.rsplit("/", 1)[1]
    assert hit.headers["X-CloudTasks-TaskName"].isdigit()


def test_oidc_tokens_are_google_style_and_verify_against_the_served_certificates(
    emulator: Emulator, target: Target
) -> None:
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    queue = emulator.queue()
    by_url, by_audience = target.url(), target.url()
    emulator.task(queue, by_url, http={"oidc_token": {"service_account_email": ACCOUNT}})
    emulator.task(queue, by_audience, http={"oidc_token": {"service_account_email": ACCOUNT, "audience": "https://worker"}})
    for url, audience in ((by_url, by_url), (by_audience, "https://worker")):
        (hit,) = target.wait(url, 1)
        scheme, token = hit.headers["Authorization"].split(" ", 1)
        assert scheme == "Bearer"
        claims = id_token.verify_token(token, Request(), audience=audience, certs_url=emulator.certs_url)
        assert claims["iss"] == "https://accounts.google.com"
        assert (claims["email"], claims["email_verified"]) == (ACCOUNT, True)
        assert claims["sub"].isdigit() and claims["exp"] - claims["iat"] == 3600
        with pytest.raises(ValueError):
            id_token.verify_token(token, Request(), audience="https://someone-else", certs_url=emulator.certs_url)


# --------------------------------------------------------------------------- names and the task API


def test_a_task_name_cannot_be_reused_soon_after(emulator: Emulator, target: Target) -> None:
    queue = emulator.queue()
    slow = target.url((200, 1.0))
    emulator.task(queue, slow, name="once")
    with pytest.raises(exceptions.AlreadyExists):  # while it is queued or running
        emulator.task(queue, target.url(), name="once")
    target.wait(slow, 1)
    time.sleep(1.3)
    with pytest.raises(exceptions.AlreadyExists):  # after it ran
        emulator.task(queue, target.url(), name="once")
    paused = emulator.queue()
    emulator.client.pause_queue(name=paused, timeout=10)
    deleted = emulator.task(paused, target.url(), name="deleted")
    emulator.client.delete_task(name=deleted.name, timeout=10)
    with pytest.raises(exceptions.AlreadyExists):  # after it was deleted
        emulator.task(paused, target.url(), name="deleted")
    emulator.task(emulator.queue(), target.url(), name="once")  # names are per queue


def test_pause_list_get_resume_and_purge(emulator: Emulator, target: Target) -> None:
    from google.cloud import tasks_v2

    queue = emulator.queue()
    assert emulator.client.pause_queue(name=queue, timeout=10).state == tasks_v2.Queue.State.PAUSED
    url = target.url()
    names = [emulator.task(queue, url, name=f"t{i}", http={"body": b"payload"}).name for i in range(3)]
    time.sleep(0.5)
    assert target.of(url) == []  # a paused queue dispatches nothing
    listed = list(emulator.client.list_tasks(parent=queue, timeout=10))
    assert sorted(t.name for t in listed) == names
    assert all(t.http_request.body == b"" for t in listed)  # BASIC view leaves the body out
    full = emulator.client.get_task(
        request={"name": names[0], "response_view": tasks_v2.Task.View.FULL}, timeout=10
    )
    assert full.http_request.body == b"payload" and full.dispatch_count == 0
    assert emulator.client.resume_queue(name=queue, timeout=10).state == tasks_v2.Queue.State.RUNNING
    target.wait(url, 3)

    purged = emulator.queue()
    emulator.client.pause_queue(name=purged, timeout=10)
    for _ in range(3):
        emulator.task(purged, url)
    emulator.client.purge_queue(name=purged, timeout=10)
    assert list(emulator.client.list_tasks(parent=purged, timeout=10)) == []
    emulator.client.resume_queue(name=purged, timeout=10)
    time.sleep(0.3)
    assert len(target.of(url)) == 3


# --------------------------------------------------------------------------- the REST API


def rest_task(queue: str, url: str, name: str, **http: Any) -> dict[str, Any]:
    """A CreateTask body in the REST API's JSON (camelCase, base64 bytes)."""
    return {"task": {"name": f"{queue}/tasks/{name}", "httpRequest": {"url": url, "httpMethod": "POST", **http}}}


def assert_error(response: requests.Response, code: int, status: str) -> None:
    """Google's JSON error shape, with the canonical HTTP status of ``status``."""
    assert response.status_code == code, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status) and error["message"], error


def test_the_rest_api_creates_tasks_the_grpc_api_sees(emulator: Emulator, target: Target) -> None:
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    queue, url = emulator.queue(), target.url()
    oidc = {"serviceAccountEmail": ACCOUNT, "audience": "https://worker"}
    body = base64.b64encode(b'{"job_id": "7"}').decode()
    with requests.Session() as session:  # one kept-alive HTTP/1.1 connection
        created = session.post(
            f"{emulator.rest_url}/v2/{queue}/tasks",
            json=rest_task(queue, url, "rest-7", headers={"Content-Type": "application/json"}, body=body, oidcToken=oidc),
            timeout=10,
        )
        assert created.status_code == 200, created.text
        task = created.json()
        assert (task["name"], task["view"], task["dispatchDeadline"]) == (f"{queue}/tasks/rest-7", "BASIC", "600s")
        assert "body" not in task["httpRequest"]  # BASIC, as Cloud Tasks answers a create
        (hit,) = target.wait(url, 1)
        assert hit.body == b'{"job_id": "7"}' and hit.headers["Content-Type"] == "application/json"
        assert hit.headers["X-CloudTasks-TaskName"] == "rest-7"
        token = hit.headers["Authorization"].removeprefix("Bearer ")
        claims = id_token.verify_token(token, Request(), audience="https://worker", certs_url=emulator.certs_url)
        assert claims["email"] == ACCOUNT

        again = session.post(f"{emulator.rest_url}/v2/{queue}/tasks", json=rest_task(queue, url, "rest-7"), timeout=10)
        assert_error(again, 409, "ALREADY_EXISTS")  # the name is taken for an hour after the task ran
        emulator.task(queue, target.url(), name="by-grpc")
        clash = session.post(f"{emulator.rest_url}/v2/{queue}/tasks", json=rest_task(queue, url, "by-grpc"), timeout=10)
        assert_error(clash, 409, "ALREADY_EXISTS")  # one set of names behind both APIs

        paused = emulator.queue()
        emulator.client.pause_queue(name=paused, timeout=10)
        session.post(f"{emulator.rest_url}/v2/{paused}/tasks", json=rest_task(paused, url, "kept", body=body), timeout=10)
        full = session.get(f"{emulator.rest_url}/v2/{paused}/tasks/kept", params={"responseView": "FULL"}, timeout=10)
        assert full.status_code == 200 and base64.b64decode(full.json()["httpRequest"]["body"]) == b'{"job_id": "7"}'
        assert emulator.client.get_task(name=f"{paused}/tasks/kept", timeout=10).http_request.url == url


def test_the_rest_api_answers_errors_as_google_does(emulator: Emulator, target: Target) -> None:
    queue, url = emulator.queue(), target.url()
    create = f"{emulator.rest_url}/v2/{queue}/tasks"
    for bad in (b"{not json", b"[]", b'{"task": {"nmae": "x"}}', b'{"task": {"httpRequest": {"httpMethod": "BREW"}}}'):
        assert_error(requests.post(create, data=bad, timeout=10), 400, "INVALID_ARGUMENT")
    assert_error(requests.post(create, json=rest_task(queue, url, "not/valid"), timeout=10), 400, "INVALID_ARGUMENT")
    assert_error(requests.post(create, json=rest_task(queue, "ftp://127.0.0.1/", "ftp"), timeout=10), 400, "INVALID_ARGUMENT")
    nowhere = f"{PARENT}/queues/nope"
    assert_error(requests.post(f"{emulator.rest_url}/v2/{nowhere}/tasks", json=rest_task(nowhere, url, "t"), timeout=10), 404, "NOT_FOUND")
    assert_error(requests.get(f"{create}/never-created", timeout=10), 404, "NOT_FOUND")
    assert_error(requests.delete(f"{create}/never-created", timeout=10), 404, "NOT_FOUND")  # no such route
    assert target.of(url) == []


def test_a_create_whose_client_hung_up_is_not_run(emulator: Emulator, target: Target) -> None:
    import signal

    queue, url = emulator.queue(), target.url()
    body = json.dumps(rest_task(queue, url, "given-up")).encode()
    request = (f"POST /v2/{queue}/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    emulator.process.send_signal(signal.SIGSTOP)  # as the stack's tests freeze it: the request waits
    try:
        with socket.create_connection(("127.0.0.1", emulator.ports[1])) as client:
            client.sendall(request)  # ...and its client gives up before the emulator reads it
    finally:
        emulator.process.send_signal(signal.SIGCONT)
    kept = requests.post(f"{emulator.rest_url}/v2/{queue}/tasks", json=rest_task(queue, url, "waited"), timeout=10)
    assert kept.status_code == 200, kept.text
    target.wait(url, 1)
    time.sleep(0.3)
    assert [hit.headers["X-CloudTasks-TaskName"] for hit in target.of(url)] == ["waited"]
    emulator.task(queue, target.url(), name="given-up")  # never created: the name is free


def test_the_functions_enqueue_through_the_rest_api(
    emulator: Emulator, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegen import task_queue
    from imagegen.clients import tasks_api
    from imagegen.config import load_settings

    for name, value in {"CLOUD_TASKS_EMULATOR_HOST": emulator.rest_url.removeprefix("http://"),
                        "GOOGLE_CLOUD_PROJECT": PROJECT, "TASKS_LOCATION": LOCATION,
                        "TASKS_SERVICE_ACCOUNT": ACCOUNT}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    tasks_api.cache_clear()  # type: ignore[attr-defined]
    try:
        queue, url = emulator.queue().rsplit("/", 1)[1], target.url()
        task_queue.enqueue_json(queue, url, {"job_id": "j1"}, task_id="j1")
        task_queue.enqueue_json(queue, url, {"job_id": "j1"}, task_id="j1")  # ALREADY_EXISTS: queued already
        (hit,) = target.wait(url, 1)
        assert hit.body == b'{"job_id": "j1"}' and hit.headers["Authorization"].startswith("Bearer ")
        with pytest.raises(task_queue.QueueUnavailable, match="NOT_FOUND"):
            task_queue.enqueue_json("nope", url, {"job_id": "j2"}, task_id="j2")
        time.sleep(0.3)
        assert len(target.of(url)) == 1
    finally:
        load_settings.cache_clear()
        tasks_api.cache_clear()  # type: ignore[attr-defined]
