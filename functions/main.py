"""Cloud Functions entry points; each one only hands the request to its module.

Deployed from this source with different ``--entry-point`` values: ``api``
(public HTTP), ``worker`` and ``webhook_delivery`` (HTTP, called by Cloud
Tasks only), ``sweeper`` (HTTP, called by Cloud Scheduler only) and
``webhook_trigger`` (CloudEvent from Firestore).
Each entry point imports only its own module, so an instance pays at cold
start for the code it serves and nothing else.
"""

from __future__ import annotations

import os

import flask
import functions_framework
from cloudevents.http import CloudEvent

from imagegen.http import error_response
from imagegen.logs import setup_logging

setup_logging(os.environ.get("GOOGLE_CLOUD_PROJECT", "imagegen-local"), os.environ.get("LOG_LEVEL", "INFO"))


@functions_framework.errorhandler(404)
def route_not_found(_error: Exception) -> flask.Response:
    """Paths functions-framework itself cannot route (a newline in the path): JSON too."""
    return error_response(404, "Route introuvable")


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """Public REST API of the seed contract (routes under ``/api/images``)."""
    from imagegen.api import router as module

    return module.handle(request)


@functions_framework.http
def worker(request: flask.Request) -> flask.Response:
    """Cloud Tasks target that runs one generation job."""
    from imagegen.generation import worker as module

    return module.handle(request)


@functions_framework.http
def webhook_delivery(request: flask.Request) -> flask.Response:
    """Cloud Tasks target that delivers one webhook event."""
    from imagegen.webhooks import delivery as module

    return module.handle_request(request)


@functions_framework.http
def sweeper(request: flask.Request) -> flask.Response:
    """Cloud Scheduler target: queue unqueued jobs, end or re-queue abandoned ones."""
    from imagegen.generation import sweeper as module

    return module.handle(request)


@functions_framework.cloud_event
def webhook_trigger(event: CloudEvent) -> None:
    """Firestore ``document.written`` events on jobs: queue the webhooks they imply."""
    from imagegen.webhooks import trigger as module

    module.handle_cloud_event(event)
