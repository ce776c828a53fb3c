"""Small helpers shared by integration tests (bucket listing, job creation)."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from emulator.stack import PORTS

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


def deliver_task(job_id: str, secret: str, **headers: str) -> requests.Response:
    """POST a worker task the way Cloud Tasks would (a duplicate delivery)."""
    return requests.post(
        WORKER,
        json={"job_id": job_id},
        headers={"X-Tasks-Secret": secret, "X-CloudTasks-TaskName": job_id} | headers,
        timeout=60,
    )


@contextlib.contextmanager
def side_api(env: dict[str, str]) -> Iterator[str]:
    """A second API process under functions-framework with its own environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--source", "functions/main.py",
         "--target", "api", "--host", "127.0.0.1", "--port", str(port)],
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
