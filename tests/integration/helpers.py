"""Small helpers shared by integration tests (bucket listing, job creation)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from emulator.stack import PORTS, Stack, free_port, function_argv
from tests.tokens import cloud_tasks_token

BUCKET = "imagegen-local-images"
STORAGE = f"http://127.0.0.1:{PORTS['storage']}"
WORKER = f"http://127.0.0.1:{PORTS['worker']}/"
ROOT = Path(__file__).resolve().parents[2]


def stored_objects(job_id: str) -> list[str]:
    """Object names under the job's prefix, straight from the storage emulator."""
    response = requests.get(
        f"{STORAGE}/storage/v1/b/{BUCKET}/o",
        params={"prefix": f"generated_images/{job_id}/"},
        timeout=10,
    )
    response.raise_for_status()
    return sorted(item["name"] for item in response.json().get("items", []))


def stored_images(job_id: str) -> list[str]:
    """``stored_objects`` without the thumbnails (``image_<n>_thumb.webp``) beside the images."""
    return [name for name in stored_objects(job_id) if not name.endswith("_thumb.webp")]


def create_job(api: Any, headers: dict[str, str] | None = None, **fields: Any) -> str:
    response = api.post(
        "/api/images/generate", json={"prompt": "Un phare sous la pluie"} | fields, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def fetch_image(url: str) -> tuple[Image.Image, str]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, url
    return Image.open(io.BytesIO(response.content)), response.headers["Content-Type"]


def deliver_task(stack: Stack, job_id: str, **headers: str) -> requests.Response:
    """POST a worker task the way Cloud Tasks would (a duplicate delivery), OIDC token included."""
    worker = stack.env["WORKER_URL"]
    return requests.post(
        worker,
        json={"job_id": job_id},
        headers={"Authorization": f"Bearer {cloud_tasks_token(stack, worker)}", "X-CloudTasks-TaskName": job_id}
        | headers,
        timeout=60,
    )


@contextlib.contextmanager
def side_api(env: dict[str, str]) -> Iterator[str]:
    """A second API process under functions-framework with its own environment."""
    port = free_port()
    process = subprocess.Popen(
        function_argv(ROOT, "api", port),
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/health", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"side API on {port} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout} s: {what}")
        time.sleep(interval)


def object_generations(job_id: str) -> dict[str, str]:
    """Object name -> storage generation (a new one at every upload) for a job's images."""
    response = requests.get(
        f"{STORAGE}/storage/v1/b/{BUCKET}/o", params={"prefix": f"generated_images/{job_id}/"}, timeout=10
    )
    response.raise_for_status()
    return {item["name"]: item["generation"] for item in response.json().get("items", [])}


def queued_job(jobs: Any, **request: Any) -> dict[str, Any]:
    """Write a PENDING job as the API does, without a task: tests deliver it themselves.

    Independent of the Tasks emulator's dispatching (and of the sweeper: the
    job counts as queued).
    """
    from imagegen import job_store
    from imagegen.models import GenerateRequest

    params = GenerateRequest.model_validate({"prompt": "Un phare sous la pluie"} | request)
    job = job_store.new_job(params.job_fields(), owner="anonymous", webhook=None, trace="")
    job["queued_at"] = job["created_at"]
    jobs.document(job["job_id"]).create(job)
    return job


def abandoned_job(jobs: Any, lease_expires_at: datetime, **request: Any) -> dict[str, Any]:
    """Write a job as a worker that died while GENERATING leaves it.

    The document is built by ``job_store.new_job`` (what the API writes), then
    moved to GENERATING under the lease of a delivery that no longer runs.
    """
    from imagegen import job_store
    from imagegen.models import JobStatus

    job = queued_job(jobs, **request)
    changes = {
        "status": JobStatus.GENERATING.value,
        "message": job_store.STATUS_MESSAGES[JobStatus.GENERATING],
        "progress": 10,
        "attempts": 1,
        "lease": {"owner": "dead-worker", "expires_at": lease_expires_at},
    }
    jobs.document(job["job_id"]).update(changes)
    return job | changes
