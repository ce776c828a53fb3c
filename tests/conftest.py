"""Shared fixtures.

Unit tests (tests/unit) need nothing running. Integration tests
(tests/integration) request ``stack`` (directly or through ``api`` /
``standin``), which starts the whole local emulator stack once per session on
the fixed ports (API 9006 ... Tasks 9013) with test settings, and stops it at
the end. Its logs are in ``.stack/test-logs/<service>.log``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator.stack import PORTS, Stack, StackError, port_in_use
from tests.loopback import LoopbackServer, QuietHandler, Receiver

ROOT = Path(__file__).resolve().parents[1]
API_BASE_URL = f"http://127.0.0.1:{PORTS['api']}"
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

# Settings every integration test runs with; a test that needs another value
# passes it per job (webhooks) or goes through the stand-in's config.
TEST_OVERRIDES: dict[str, str | None] = {
    "ALLOW_PRIVATE_IMAGE_URLS": "true",
    "GEMINI_RETRY_INITIAL_DELAY_MS": "100",
    # A model answering "not found" or "shut down" is replaced by Pro (the default is Flash).
    "GEMINI_MODEL_FALLBACKS": "gemini-3-pro-image",
    "JOB_LEASE_SECONDS": "15",
    # The sweeper runs only when a test calls it; these make its thresholds test-sized.
    "SWEEPER_QUEUE_AFTER_SECONDS": "3",
    "SWEEPER_QUIET_AFTER_SECONDS": "20",
    # Test-sized backoffs (infra/'s start at 10 s); rates, concurrency and attempts stay infra/'s.
    "TASKS_QUEUE_OVERRIDES": '{"*": {"min_backoff": "0.5s", "max_backoff": "4s", "max_retry_duration": "0s"}}',
    "WEBHOOK_ENABLED": "false",
    # A raw secret (as in the seed): it signs the operator's WEBHOOK_URL only.
    "WEBHOOK_SECRET": "local-test-webhook-secret",
    # Never reach real Google from the tests, whatever the developer's shell holds.
    "GOOGLE_API_KEY": None,
    "GEMINI_API_KEY": None,
    "GOOGLE_GENAI_USE_VERTEXAI": None,
    "GOOGLE_APPLICATION_CREDENTIALS": None,
}


# --------------------------------------------------------------------------- stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The local emulator stack, started once for the whole session."""
    if port_in_use(PORTS["api"]):
        pytest.fail(
            f"port {PORTS['api']} (the API) is already in use: a local stack is probably"
            " running. Stop it with `make down` (or Ctrl-C in `make run`) and run the tests again.",
            pytrace=False,
        )
    yield from running(Stack(ROOT, overrides=TEST_OVERRIDES, log_dir=ROOT / ".stack" / "test-logs"), "the local stack")


def running(stack: Stack, what: str) -> Iterator[Stack]:
    """A stack fixture's body: start ``stack`` (the run fails, naming ``what``, if it cannot), stop it after."""
    try:
        stack.start(timeout=180)
    except StackError as err:
        pytest.fail(f"{what} did not start: {err}", pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def jobs(stack: Stack) -> Iterator[Any]:
    """The jobs collection, through the Firestore emulator (google-cloud-firestore)."""
    from google.cloud import firestore

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
        client = firestore.Client(project=stack.project)
    try:
        yield client.collection(stack.env.get("JOBS_COLLECTION") or "image_jobs")
    finally:
        client.close()


# --------------------------------------------------------------------------- API client


class ApiClient(requests.Session):
    """``requests.Session`` whose relative URLs go to the API (default timeout 30 s)."""

    def __init__(self, base_url: str = API_BASE_URL) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)

    def wait_for_job(
        self, job_id: str, timeout: float = 60, interval: float = 0.2, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Poll ``/api/images/status/<job_id>`` until COMPLETED, FAILED or CANCELLED."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            resp = self.get(f"/api/images/status/{job_id}", headers=headers)
            if resp.status_code == 200:
                last = resp.json()
                if last.get("status") in TERMINAL_STATUSES:
                    return last
            else:
                last = f"HTTP {resp.status_code}: {resp.text[:500]}"
            if time.monotonic() >= deadline:
                raise AssertionError(f"job {job_id} not finished after {timeout} s; last status: {last}")
            time.sleep(interval)


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiClient]:
    client = ApiClient(API_BASE_URL)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_key(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], dict[str, str]]]:
    """Create a real API key in the stack's Firestore; returns the header to send it."""
    from imagegen.api import keys
    from imagegen.clients import database
    from imagegen.config import load_settings

    for name in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.setenv(name, stack.env[name])
    load_settings.cache_clear()
    database.cache_clear()
    yield lambda owner: {"Authorization": f"Bearer {keys.create_key(owner, 'tests')}"}
    load_settings.cache_clear()
    database.cache_clear()


# --------------------------------------------------------------------------- Gemini stand-in


class StandinControl:
    """The stand-in's control endpoints (never Gemini paths)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = requests.Session()

    def configure(
        self, latency_ms: int = 0, faults: list[dict[str, Any]] | None = None, **more: Any
    ) -> dict[str, Any]:
        """Replace the config: ``faults`` items are ``{"kind", "match", "times"}``; ``more``:
        ``shut_down_models=[...]``, ``model_latency_ms={model: ms}``."""
        resp = self._http.put(
            f"{self.base_url}/_standin/config",
            json={"latency_ms": latency_ms, "faults": faults or []} | more,
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def config(self) -> dict[str, Any]:
        resp = self._http.get(f"{self.base_url}/_standin/config", timeout=10)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self._http.post(f"{self.base_url}/_standin/reset", timeout=10).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        """The generateContent calls received since the last reset, oldest first."""
        resp = self._http.get(f"{self.base_url}/_standin/calls", timeout=10)
        resp.raise_for_status()
        return resp.json()["calls"]

    def wait_until_quiet(self, timeout: float = 15.0) -> None:
        """Until no call is in flight: a cancelled job's call still lands in the log when answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self._http.get(f"{self.base_url}/_standin/calls", timeout=10)
            resp.raise_for_status()
            if not resp.json()["in_flight"]:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self._http.close()


ACTIVE_STATUSES = ("PENDING", "INITIALIZING", "GENERATING", "SAVING")


def busy_jobs(stack: Stack, recent_seconds: float = 20.0) -> list[str]:
    """Ids of jobs still running (not terminal, updated in the last ``recent_seconds``).

    Read through the Firestore emulator's REST API, so the test process needs
    no Firestore environment. Jobs abandoned long ago (crash tests) don't count.
    """
    from datetime import datetime, timedelta

    collection = stack.env.get("JOBS_COLLECTION") or "image_jobs"
    url = (
        f"{stack.urls['firestore']}/v1/projects/{stack.project}/databases/(default)/documents:runQuery"
    )
    query = {
        "structuredQuery": {
            "from": [{"collectionId": collection}],
            "where": {
                "fieldFilter": {
                    "field": {"fieldPath": "status"},
                    "op": "IN",
                    "value": {"arrayValue": {"values": [{"stringValue": s} for s in ACTIVE_STATUSES]}},
                }
            },
            "limit": 50,
        }
    }
    resp = requests.post(url, json=query, headers={"Authorization": "Bearer owner"}, timeout=10)
    resp.raise_for_status()
    since = datetime.now(UTC) - timedelta(seconds=recent_seconds)
    busy = []
    for row in resp.json():
        doc = row.get("document")
        if not doc:
            continue
        stamp = doc.get("fields", {}).get("updated_at", {}).get("timestampValue", "")
        try:
            updated = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            updated = datetime.now(UTC)
        if updated >= since:
            busy.append(doc["name"].rsplit("/", 1)[-1])
    return busy


def wait_for_idle_jobs(stack: Stack, timeout: float = 15.0) -> list[str]:
    """Wait (bounded) until no job of an earlier test is still running; returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        busy = busy_jobs(stack)
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.2)


@pytest.fixture
def standin(stack: Stack) -> Iterator[StandinControl]:
    """Control of the stack's Gemini stand-in; reset before and after each test.

    Before the reset, jobs that earlier tests left running get (up to 15 s) to
    finish, and model calls in flight (a cancelled job's) to be answered, so
    that they don't land in this test's call log.
    """
    control = StandinControl(stack.urls["gemini_standin"])
    wait_for_idle_jobs(stack)
    control.wait_until_quiet()
    control.reset()
    try:
        yield control
    finally:
        try:
            control.reset()
        finally:
            control.close()


# --------------------------------------------------------------------------- input images


def make_photo_jpeg(width: int = 800, height: int = 600) -> bytes:
    """A deterministic photo-like JPEG (gradients and shapes), same bytes every call."""
    from PIL import Image, ImageDraw

    red = Image.linear_gradient("L").resize((width, height))
    green = Image.linear_gradient("L").rotate(90).resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    img = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.55, height * 0.1, width * 0.85, height * 0.5), fill=(250, 210, 60))
    draw.rectangle((0, height * 0.7, width, height), fill=(20, 70, 140))
    for i in range(0, width, 40):
        draw.line((i, height * 0.7 + (i % 80) / 4, i + 30, height * 0.7), fill=(230, 240, 255), width=3)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


class ImageServer(LoopbackServer):
    """A loopback HTTP server: ``GET /photo.jpg`` -> an 800x600 JPEG."""

    def __init__(self) -> None:
        self.photo = make_photo_jpeg()
        self.requests: list[str] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path.split("?", 1)[0] != "/photo.jpg":
                    self.reply(404)
                    return
                self.reply(200, server.photo, {"Content-Type": "image/jpeg"})

        super().__init__(Handler, name="image-server")
        self.photo_url = f"{self.base_url}/photo.jpg"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """Loopback webhook receiver, one per test module (``.url()`` gives a fresh path)."""
    with Receiver() as server:
        yield server


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """Loopback server for ``input_image_url`` (``.photo_url``, ``.photo`` bytes)."""
    server = ImageServer()
    try:
        yield server
    finally:
        server.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration is marked ``integration`` (``-m 'not integration'``)."""
    integration_dir = ROOT / "tests" / "integration"
    for item in items:
        if integration_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
