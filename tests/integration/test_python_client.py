"""The Python client (clients/python, ``imagegen_client``) against the running stack, sync and async."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from PIL import Image

from emulator.stack import Stack
from imagegen_client import (
    AsyncImageGenClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ImageGenClient,
    JobEvent,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    ResultResponse,
    WebhookVerificationError,
    verify_webhook,
)
from tests.conftest import API_BASE_URL
from tests.integration.helpers import side_api
from tests.loopback import LoopbackServer, QuietHandler, Receiver

ROOT = Path(__file__).resolve().parents[2]


class Recorded:
    """An httpx client whose requests are recorded (method and URL), sync or async."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def sync(self) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self.requests.append]})

    def asynchronous(self) -> httpx.AsyncClient:
        async def record(request: httpx.Request) -> None:
            self.requests.append(request)

        return httpx.AsyncClient(event_hooks={"request": [record]})

    def paths(self) -> list[str]:
        return [f"{request.method} {request.url.path}" for request in self.requests]


def run_sync(calls: Callable[[Any], Any], recorded: Recorded, base_url: str = API_BASE_URL, **options: Any) -> Any:
    with ImageGenClient(base_url, http_client=recorded.sync(), **options) as client:
        return calls(client)


def run_async(calls: Callable[[Any], Any], recorded: Recorded, base_url: str = API_BASE_URL, **options: Any) -> Any:
    async def main() -> Any:
        async with AsyncImageGenClient(base_url, http_client=recorded.asynchronous(), **options) as client:
            answer = calls(client)
            return await answer if asyncio.iscoroutine(answer) else answer

    return asyncio.run(main())


@pytest.fixture(params=[run_sync, run_async], ids=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return request.param


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def _listed(client: Any, **options: Any) -> Any:
    """``client.jobs(...)`` as a list, for either client."""
    jobs = client.jobs(**options)
    return _collect(jobs) if isinstance(client, AsyncImageGenClient) else list(jobs)


def test_generate_follows_the_event_stream_and_downloads(run: Any, standin: Any, tmp_path: Path) -> None:
    standin.configure(latency_ms=400)
    recorded, updates = Recorded(), []

    async def on_progress_async(update: JobEvent) -> None:  # the async client awaits coroutine callbacks
        updates.append(update)

    def generate(client: Any) -> Any:
        callback = on_progress_async if isinstance(client, AsyncImageGenClient) else updates.append
        return client.generate("Un phare sous la pluie", num_images=4, size="512x512", format="JPEG",
                               on_progress=callback)

    result = run(generate, recorded)
    assert isinstance(result, ResultResponse) and result.status.value == "COMPLETED"
    assert len(result.images) == 4 and result.metadata.model_name
    progress = [update.progress for update in updates]
    assert progress == sorted(progress) and progress[-1] == 100 and len(set(progress)) >= 4, progress
    assert "GENERATING" in {update.status.value for update in updates}
    assert updates[-1].images == result.images  # the stream's COMPLETED event carried the result
    # Push, not polling: one create, one stream (no status or result requests).
    assert recorded.paths() == ["POST /api/images/generate", f"GET /api/images/events/{result.job_id}"]

    paths = run(lambda client: client.download(result, tmp_path / "out"), Recorded())
    assert [path.name for path in paths] == [f"{result.job_id}_image_{n}.jpg" for n in range(1, 5)]
    for path, image in zip(paths, result.images):
        with Image.open(path) as decoded:
            assert (decoded.format, decoded.size) == ("JPEG", (512, 512))
        assert path.stat().st_size == image.size_bytes


def test_create_status_result_cancel(run: Any, standin: Any) -> None:
    standin.configure(latency_ms=4000)

    async def lifecycle_async(client: AsyncImageGenClient) -> Any:
        job = await client.create("Un phare", size="512x512")
        return job, await client.status(job.job_id), await client.result(job.job_id), await client.cancel(job.job_id)

    def lifecycle(client: Any) -> Any:
        if isinstance(client, AsyncImageGenClient):
            return lifecycle_async(client)
        job = client.create("Un phare", size="512x512")
        return job, client.status(job.job_id), client.result(job.job_id), client.cancel(job.job_id)

    created, status, running, cancelled = run(lifecycle, Recorded())
    assert (created.status.value, created.message) == ("PENDING", "Tâche de génération d'images créée avec succès")
    assert status.job_id == created.job_id and status.status.value in {"PENDING", "INITIALIZING", "GENERATING"}
    assert running.images is None and running.progress is not None  # 202: not ready yet
    assert cancelled.status.value == "CANCELLED"
    with ImageGenClient(API_BASE_URL) as client:
        with pytest.raises(JobFailedError) as failed:
            client.wait(created.job_id)
        assert (failed.value.status, failed.value.job.status.value) == ("CANCELLED", "CANCELLED")
        with pytest.raises(ConflictError) as conflict:
            client.cancel(created.job_id)
    assert (conflict.value.status_code, conflict.value.message) == (409, "La tâche est déjà terminée (CANCELLED)")


def test_errors_are_typed_with_the_french_message_and_status(run: Any, standin: Any) -> None:
    finished = run(lambda client: client.generate("Un phare", size="512x512"), Recorded())

    def attempt(call: Callable[[Any], Any]) -> Any:
        def guarded(client: Any) -> Any:
            async def awaited() -> Any:
                try:
                    return await call(client)
                except Exception as exc:
                    return exc

            if isinstance(client, AsyncImageGenClient):
                return awaited()
            try:
                return call(client)
            except Exception as exc:
                return exc

        return run(guarded, Recorded())

    empty = attempt(lambda client: client.create("   "))
    assert isinstance(empty, BadRequestError)
    assert (empty.status_code, empty.message) == (400, "Prompt requis")
    assert empty.details == [{"field": "prompt", "message": "Prompt requis"}]
    size = attempt(lambda client: client.create("Un phare", size="2000x2000"))
    assert isinstance(size, BadRequestError)
    assert size.message == "size doit être l'une des valeurs : 512x512, 1024x1024, 1792x1024"
    missing = attempt(lambda client: client.status("img_doesnotexist00"))
    assert isinstance(missing, NotFoundError) and (missing.status_code, missing.message) == (404, "Tâche introuvable")
    done = attempt(lambda client: client.cancel(finished.job_id))
    assert isinstance(done, ConflictError)
    assert (done.status_code, done.message) == (409, "La tâche est déjà terminée (COMPLETED)")
    assert str(done) == done.message
    with pytest.raises(AuthenticationError) as refused:
        run(lambda client: client.status(finished.job_id), Recorded(), api_key="igk_not_a_real_key")
    assert (refused.value.status_code, refused.value.message) == (401, "Clé API invalide")


def test_jobs_iterates_over_the_cursor_pages(run: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    key = make_key(f"pyclient-pages-{uuid.uuid4().hex[:8]}")["Authorization"].removeprefix("Bearer ")
    with ImageGenClient(API_BASE_URL, key) as client:
        created = [client.create(f"Page {n}", size="512x512").job_id for n in range(5)]
    recorded = Recorded()
    listed = run(lambda client: _listed(client, page_size=2), recorded, api_key=key)
    assert [job.job_id for job in listed] == created[::-1]  # newest first, every job once
    pages = [request for request in recorded.requests if request.url.path == "/api/images/jobs"]
    assert [request.url.params.get("cursor") for request in pages] == [None, created[3], created[1]]
    assert run(lambda client: _listed(client, page_size=2, status="CANCELLED"), Recorded(), api_key=key) == []


def test_wait_gives_up_at_its_timeout(run: Any, standin: Any) -> None:
    standin.configure(latency_ms=15000)

    async def create_then_wait_async(client: AsyncImageGenClient) -> Any:
        job = await client.create("Un phare", size="512x512")
        started = time.monotonic()
        try:
            await client.wait(job.job_id, timeout=2)
        except JobTimeoutError as exc:
            return exc, time.monotonic() - started, await client.cancel(job.job_id)

    def create_then_wait(client: Any) -> Any:
        if isinstance(client, AsyncImageGenClient):
            return create_then_wait_async(client)
        job = client.create("Un phare", size="512x512")
        started = time.monotonic()
        try:
            client.wait(job.job_id, timeout=2)
        except JobTimeoutError as exc:
            return exc, time.monotonic() - started, client.cancel(job.job_id)

    error, elapsed, cancelled = run(create_then_wait, Recorded())
    assert 2 <= elapsed < 4, elapsed  # not the 15 s of silence the job would leave on the stream
    assert error.message == f"{cancelled.job_id} : toujours en cours après 2 s"


def test_a_failed_job_raises_job_failed_error_with_its_errors(run: Any, standin: Any) -> None:
    standin.configure(faults=[{"kind": "invalid_key", "match": "pyclient-failure", "times": None}])
    with pytest.raises(JobFailedError) as caught:
        run(lambda client: client.generate("pyclient-failure: un phare", size="512x512"), Recorded())
    error = caught.value
    assert (error.status, error.errors, error.message) == (
        "FAILED", ["Clé API Google invalide ou expirée"], "Clé API Google invalide ou expirée"
    )
    assert error.status_code is None and error.job.job_id.startswith("img_")


class NoStreamProxy(LoopbackServer):
    """The API behind a proxy that has no event stream (an older server): 404 on /events."""

    def __init__(self, upstream: str) -> None:
        self.paths: list[str] = []
        proxy = self

        class Handler(QuietHandler):
            def _forward(self) -> None:
                proxy.paths.append(f"{self.command} {self.path}")
                if self.path.startswith("/api/images/events/"):
                    self.reply(404, json.dumps({"error": "Route introuvable"}).encode(),
                               {"Content-Type": "application/json"})
                    return
                headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                body = self.body() if self.command == "POST" else None
                answer = requests.request(self.command, upstream + self.path, headers=headers, data=body, timeout=60)
                keep = {name: value for name, value in answer.headers.items()
                        if name.lower() in {"content-type", "etag", "retry-after"}}
                self.reply(answer.status_code, answer.content, keep)

            do_GET = do_POST = _forward

        super().__init__(Handler, name="no-stream-proxy")


@pytest.fixture
def no_stream_proxy(stack: Stack) -> Iterator[NoStreamProxy]:
    with NoStreamProxy(API_BASE_URL) as proxy:
        yield proxy


def test_without_the_stream_generate_long_polls(run: Any, standin: Any, no_stream_proxy: NoStreamProxy) -> None:
    standin.configure(latency_ms=1500)
    updates: list[JobEvent] = []
    result = run(lambda client: client.generate("Un phare", num_images=2, size="512x512", on_progress=updates.append),
                 Recorded(), no_stream_proxy.base_url)
    assert result.status.value == "COMPLETED" and len(result.images) == 2
    progress = [update.progress for update in updates]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 3, progress
    polls = [path for path in no_stream_proxy.paths if path.startswith("GET /api/images/status/")]
    assert polls and all("wait=" in path for path in polls)
    assert len(polls) <= len(updates) + 2, "each long-poll answered with a change (not a 1 s polling loop)"
    assert no_stream_proxy.paths[-1] == f"GET /api/images/result/{result.job_id}"


def test_the_stream_is_resumed_with_last_event_id_after_the_servers_cap(stack: Stack, standin: Any) -> None:
    standin.configure(latency_ms=5000)
    env = stack.env | {"SSE_HEARTBEAT_SECONDS": "1", "SSE_MAX_SECONDS": "2"}
    recorded, updates = Recorded(), []
    with side_api(env) as base:
        result = run_sync(lambda client: client.generate("Un phare", size="512x512", on_progress=updates.append),
                          recorded, base)
    assert result.status.value == "COMPLETED"
    streams = [request for request in recorded.requests if request.url.path.startswith("/api/images/events/")]
    assert len(streams) >= 2, "the 2 s cap closed the first stream before the 5 s job ended"
    assert "Last-Event-ID" not in streams[0].headers
    assert all(request.headers["Last-Event-ID"].isdigit() for request in streams[1:])
    states = [(update.status.value, update.progress, update.updated_at) for update in updates]
    assert len(states) == len(set(states)), "resuming repeats no event"
    assert states[-1][:2] == ("COMPLETED", 100)


def test_events_iterates_over_the_updates_until_the_end(run: Any, standin: Any) -> None:
    standin.configure(latency_ms=500)

    async def follow_async(client: AsyncImageGenClient) -> Any:
        job = await client.create("Un phare", num_images=2, size="512x512")
        return [update async for update in client.events(job.job_id)]

    def follow(client: Any) -> Any:
        if isinstance(client, AsyncImageGenClient):
            return follow_async(client)
        job = client.create("Un phare", num_images=2, size="512x512")
        return list(client.events(job.job_id))

    updates = run(follow, Recorded())
    assert [update.status.value for update in updates][-1] == "COMPLETED"
    assert [update.progress for update in updates] == sorted(update.progress for update in updates)
    assert updates[-1].images and len(updates[-1].images) == 2


def test_verify_webhook_accepts_a_real_delivery_signed_with_the_callers_key(
    run: Any, standin: Any, make_key: Callable[[str], dict[str, str]]
) -> None:
    key = make_key(f"pyclient-hooks-{uuid.uuid4().hex[:8]}")["Authorization"].removeprefix("Bearer ")
    with Receiver() as receiver:
        url = receiver.url()
        result = run(lambda client: client.generate("Un phare", size="512x512", webhook_url=url), Recorded(),
                     api_key=key)
        (delivery,) = receiver.wait(url, 1)
    secret = run(lambda client: client.webhook_secret(), Recorded(), api_key=key).secret
    assert secret.startswith("whsec_")
    payload = verify_webhook(delivery.headers, delivery.body, secret)
    assert (payload["job_id"], payload["status"]) == (result.job_id, "completed")
    with pytest.raises(WebhookVerificationError):  # another owner's key does not verify it
        other = make_key(f"pyclient-hooks-{uuid.uuid4().hex[:8]}")["Authorization"].removeprefix("Bearer ")
        verify_webhook(delivery.headers, delivery.body, run(lambda c: c.webhook_secret(), Recorded(), api_key=other).secret)


README_PYTHON_EXAMPLE = '''\
from imagegen_client import ImageGenClient, JobFailedError

with ImageGenClient() as client:  # $IMAGEGEN_URL (default http://localhost:9006), $IMAGEGEN_API_KEY
    try:
        result = client.generate(
            "Un chat astronaute flottant dans l'espace",
            num_images=2, size="1792x1024", format="WEBP", style="artistic", quality="ultra",
            on_progress=lambda update: print(update.status.value, update.progress, update.message),
        )
    except JobFailedError as error:  # FAILED or CANCELLED; HTTP errors are ImageGenError subclasses
        raise SystemExit(f"{error.status}: {error.message}")
    for path in client.download(result, "out"):
        print(path)
'''


def test_the_readme_python_example_runs(stack: Stack, tmp_path: Path) -> None:
    assert README_PYTHON_EXAMPLE in (ROOT / "README.md").read_text(), "README's Python example is this test's"
    script = tmp_path / "example.py"
    script.write_text(README_PYTHON_EXAMPLE)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "IMAGEGEN_URL": API_BASE_URL,
                               "PYTHONPATH": str(ROOT / "clients" / "python" / "src")})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-3].startswith("COMPLETED 100") and len(lines[-2:]) == 2
    for line in lines[-2:]:
        with Image.open(tmp_path / line) as decoded:
            assert (decoded.format, decoded.size) == ("WEBP", (1792, 1024))
