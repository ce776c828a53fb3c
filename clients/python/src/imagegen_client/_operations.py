"""One flow per API operation (see ``_calls``): what each client method sends and returns."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imagegen_client import errors
from imagegen_client._calls import Call, Config, Emit, Flow, checked, fetch, send
from imagegen_client.models import (
    CreateJobResponse,
    HealthResponse,
    JobListResponse,
    ResultResponse,
    StatusResponse,
    UsageResponse,
    WebhookSecretResponse,
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def health(config: Config) -> Flow[HealthResponse]:
    return (yield from fetch(config.call("GET", "/health"), config, HealthResponse))


def create(config: Config, prompt: str, params: dict[str, Any], idempotency_key: str | None) -> Flow[CreateJobResponse]:
    """POST the job with an ``Idempotency-Key`` (random by default): a retried create makes one job."""
    call = config.call(
        "POST", "/api/images/generate",
        json={"prompt": prompt, **params},
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )
    return (yield from fetch(call, config, CreateJobResponse))


def status(config: Config, job_id: str) -> Flow[StatusResponse]:
    return (yield from fetch(config.call("GET", "/api/images/status", job_id), config, StatusResponse))


def result(config: Config, job_id: str) -> Flow[ResultResponse]:
    return (yield from fetch(config.call("GET", "/api/images/result", job_id), config, ResultResponse))


def cancel(config: Config, job_id: str) -> Flow[StatusResponse]:
    call = config.call("POST", "/api/images/cancel", job_id, repeatable=False)
    return (yield from fetch(call, config, StatusResponse))


def jobs(config: Config, status: str | None, page_size: int) -> Flow[None]:
    """Emit every job of the caller, newest first, one page (``page_size`` jobs) at a time."""
    cursor: str | None = None
    while True:
        params = {"limit": page_size} | ({"status": status} if status else {}) | ({"cursor": cursor} if cursor else {})
        page = yield from fetch(config.call("GET", "/api/images/jobs", params=params), config, JobListResponse)
        for job in page.jobs:
            yield Emit(job)
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def webhook_secret(config: Config, rotate: bool) -> Flow[WebhookSecretResponse]:
    call = (
        config.call("POST", "/api/webhooks/secret/rotate", repeatable=False)
        if rotate
        else config.call("GET", "/api/webhooks/secret")
    )
    return (yield from fetch(call, config, WebhookSecretResponse))


def usage(config: Config, start: str | None, end: str | None) -> Flow[UsageResponse]:
    """``GET /api/usage``: the caller's completed jobs per day (UTC), ``from``..``to``."""
    params = ({"from": start} if start else {}) | ({"to": end} if end else {})
    return (yield from fetch(config.call("GET", "/api/usage", params=params), config, UsageResponse))


def download(config: Config, job: ResultResponse, directory: str | os.PathLike[str]) -> Flow[list[Path]]:
    """Save the job's images as ``<directory>/<job_id>_<file name>``; return their paths.

    Credentials go only to the API's own origin (never to a signed storage
    URL); each file is written whole or not at all, and its size checked.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in job.images or []:
        own = image.url.startswith(config.base_url + "/")
        response = checked((yield from send(Call("GET", image.url, authenticated=own), config)))
        if len(response.content) != image.size_bytes:
            raise errors.ImageGenError(f"{image.url} : {len(response.content)} octets reçus, {image.size_bytes} attendus")
        name = _SAFE_NAME.sub("_", f"{job.job_id}_{Path(urlsplit(image.url).path).name}")
        paths.append(_write(target / name, response.content))
    return paths


def _write(path: Path, data: bytes) -> Path:
    part = path.with_name(f".{path.name}.part")
    part.write_bytes(data)
    os.replace(part, path)
    return path
