"""Cloud Tasks: enqueue one HTTP task per unit of work.

Tasks are named after the work they carry (a job id, a webhook event id), so
Cloud Tasks itself refuses a second task for the same work: ``AlreadyExists``
means the work is already queued and counts as success.

Task targets are authenticated with an OIDC token minted by Cloud Tasks for
``TASKS_SERVICE_ACCOUNT`` (audience = target URL), in production and against
the local emulator alike.
"""

from __future__ import annotations

import json
from typing import Any

from imagegen.clients import tasks_client
from imagegen.config import load_settings
from imagegen.logs import TRACE_HEADER, current_trace


class QueueUnavailable(Exception):
    """The task could not be enqueued; the caller decides what to tell its client."""


def enqueue_json(queue: str, url: str, payload: dict[str, Any], task_id: str) -> None:
    """Queue a POST of ``payload`` as JSON to ``url``, at most once per ``task_id``."""
    from google.api_core import exceptions, retry
    from google.cloud import tasks_v2

    settings = load_settings()
    client = tasks_client()
    parent = client.queue_path(settings.project, settings.tasks_location, queue)
    headers = {"Content-Type": "application/json"}
    if current_trace():
        headers[TRACE_HEADER] = current_trace()
    http_request: dict[str, Any] = {
        "http_method": tasks_v2.HttpMethod.POST,
        "url": url,
        "headers": headers,
        "body": json.dumps(payload).encode(),
    }
    if settings.tasks_service_account:
        http_request["oidc_token"] = {
            "service_account_email": settings.tasks_service_account,
            "audience": url,
        }
    task = {"name": f"{parent}/tasks/{task_id}", "http_request": http_request}
    try:
        # Named tasks make CreateTask idempotent, so transient errors are safe to retry.
        transient = retry.Retry(
            initial=0.2,
            maximum=2.0,
            timeout=15.0,
            predicate=retry.if_exception_type(
                exceptions.ServiceUnavailable, exceptions.DeadlineExceeded
            ),
        )
        client.create_task(parent=parent, task=task, retry=transient, timeout=10.0)  # type: ignore[arg-type]
    except exceptions.AlreadyExists:
        return
    except exceptions.GoogleAPIError as exc:  # RetryError (retries ran out) included
        raise QueueUnavailable(str(exc)) from exc
