"""Cloud Tasks: enqueue one HTTP task per unit of work, through the v2 REST API.

Tasks are named after the work they carry (a job id, a webhook event id), so
Cloud Tasks itself refuses a second task for the same work: ``AlreadyExists``
means the work is already queued and counts as success, and a named create
is safe to send again after a transient error.

Task targets are authenticated with an OIDC token minted by Cloud Tasks for
``TASKS_SERVICE_ACCOUNT`` (audience = target URL), in production and against
the local emulator alike (its REST front at ``CLOUD_TASKS_EMULATOR_HOST``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from imagegen.clients import tasks_api
from imagegen.config import load_settings
from imagegen.logs import TRACE_HEADER, current_trace


class QueueUnavailable(Exception):
    """The task could not be enqueued; the caller decides what to tell its client."""


def create_task(parent: str, task: dict[str, Any]) -> None:
    """``projects.locations.queues.tasks.create`` (``cloudtasks.tasks.create`` on the queue)."""
    tasks_api().call("POST", f"/v2/{parent}/tasks", {"task": task}, idempotent=True)


def enqueue_json(queue: str, url: str, payload: dict[str, Any], task_id: str) -> None:
    """Queue a POST of ``payload`` as JSON to ``url``, at most once per ``task_id``."""
    import httpx2

    from imagegen.google_api import errors

    settings = load_settings()
    parent = f"projects/{settings.project}/locations/{settings.tasks_location}/queues/{queue}"
    headers = {"Content-Type": "application/json"}
    if current_trace():
        headers[TRACE_HEADER] = current_trace()
    http_request: dict[str, Any] = {
        "url": url,
        "httpMethod": "POST",
        "headers": headers,
        "body": base64.b64encode(json.dumps(payload).encode()).decode(),
    }
    if settings.tasks_service_account:
        http_request["oidcToken"] = {"serviceAccountEmail": settings.tasks_service_account, "audience": url}
    try:
        create_task(parent, {"name": f"{parent}/tasks/{task_id}", "httpRequest": http_request})
    except errors.AlreadyExists:
        return
    except (errors.ApiError, httpx2.TransportError) as exc:  # transient ones already retried
        raise QueueUnavailable(str(exc)) from exc
