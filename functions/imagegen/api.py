"""The public HTTP API: the seed's routes, plus ``/openapi.json`` and image serving.

Routing uses Werkzeug's URL map (already shipped with functions-framework),
so unknown paths are 404 and wrong methods 405, both as JSON. Whatever the
client sends, the answer is a 2xx or a 4xx JSON error; 5xx is reserved for
the server's own state (no model configured: 500 as in the seed's table;
Firestore or Cloud Tasks unreachable: 503 with ``Retry-After``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import flask
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule

from . import job_store, storage, task_queue
from .config import GeminiBackend, load_settings
from .gemini import NOT_CONFIGURED
from .http import error_response, json_response, request_context
from .logs import current_trace, fields, log_context
from .models import CreateJobResponse, GenerateRequest, HealthResponse, JobStatus, validation_messages
from .openapi import openapi_document
from .results import result_body, status_body
from .source_image import is_public_address

logger = logging.getLogger(__name__)

NOT_FOUND = "Tâche introuvable"
CREATED = "Tâche de génération d'images créée avec succès"
UNAVAILABLE = "Service temporairement indisponible, réessayez dans quelques instants"
_IMAGE_FILE = re.compile(r"^image_[1-4]\.(png|jpg|webp)$")
_RETRY_AFTER = "5"

_ROUTES = Map(
    [
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/openapi.json", endpoint="openapi", methods=["GET"]),
        Rule("/api/images/generate", endpoint="generate", methods=["POST"]),
        Rule("/api/images/status/<job_id>", endpoint="status", methods=["GET"]),
        Rule("/api/images/result/<job_id>", endpoint="result", methods=["GET"]),
        Rule(f"/{storage.IMAGES_PREFIX}/<job_id>/<filename>", endpoint="image", methods=["GET"]),
    ],
    strict_slashes=False,
)


def handle(request: flask.Request) -> flask.Response:
    """Dispatch one request and add the CORS headers browsers need."""
    with request_context(request):
        if request.method == "OPTIONS":
            response = flask.Response(status=204)
        else:
            response = _dispatch(request)
        return _with_cors(request, response)


def _dispatch(request: flask.Request) -> flask.Response:
    adapter = _ROUTES.bind("api", path_info=request.path, url_scheme=request.scheme)
    try:
        endpoint, args = adapter.match(method=request.method)
    except MethodNotAllowed:
        return error_response(405, "Méthode non autorisée")
    except HTTPException:  # NotFound, and redirects we do not offer
        return error_response(404, "Route introuvable")
    try:
        return _HANDLERS[endpoint](request, **args)
    except Exception:
        logger.exception("request failed", **fields(endpoint=endpoint))
        return error_response(503, UNAVAILABLE, Retry_After=_RETRY_AFTER)


def health(request: flask.Request) -> flask.Response:
    """The seed's health shape; ``image_generation`` says whether a model is configured."""
    settings = load_settings()
    backend = settings.gemini_backend
    return json_response(
        HealthResponse(
            status="healthy",
            features={
                "book_generation": False,
                "blog_generation": False,
                "image_generation": backend is not GeminiBackend.NONE,
            },
            model=settings.gemini_model,
            gemini_backend=backend.value,
        )
    )


def openapi(request: flask.Request) -> flask.Response:
    return json_response(openapi_document())


def generate(request: flask.Request) -> flask.Response:
    """Validate, store the PENDING job, queue its task; 202 with the job id."""
    settings = load_settings()
    body, problem = _json_body(request, settings.max_request_bytes)
    if problem is not None:
        return problem
    try:
        params = GenerateRequest.model_validate(body)
    except ValidationError as exc:
        details = validation_messages(exc)
        return error_response(400, details[0]["message"], details)
    refused = _refused_url_field(params, settings.allow_private_image_urls)
    if refused:
        message = f"{refused} pointe vers une adresse privée ou locale, refusée"
        return error_response(400, message, [{"field": refused, "message": message}])
    if settings.gemini_backend is GeminiBackend.NONE:
        return error_response(500, NOT_CONFIGURED)

    job_id = job_store.new_job_id()
    webhook = (
        {"url": params.webhook_url, "events": params.webhook_events}
        if params.webhook_url or params.webhook_events
        else None
    )
    with log_context(job_id=job_id):
        job_store.create_job(
            job_id, params.job_fields(), owner="anonymous", webhook=webhook, trace=current_trace()
        )
        try:
            task_queue.enqueue_json(
                settings.tasks_queue, settings.worker_url, {"job_id": job_id}, task_id=job_id
            )
        except task_queue.QueueUnavailable:
            logger.exception("could not queue the job; failing it")
            job_store.fail_unowned(job_id, ["File d'attente indisponible, la tâche n'a pas pu démarrer"])
            return error_response(503, UNAVAILABLE, Retry_After=_RETRY_AFTER)
        logger.info("job created", **fields(num_images=params.num_images, size=params.size))
    return json_response(
        CreateJobResponse(job_id=job_id, status=JobStatus.PENDING, message=CREATED),
        202,
        {"Location": f"/api/images/status/{job_id}"},
    )


def status(request: flask.Request, job_id: str) -> flask.Response:
    job = job_store.get_job(job_id)
    if job is None:
        return error_response(404, NOT_FOUND)
    return json_response(status_body(job))


def result(request: flask.Request, job_id: str) -> flask.Response:
    """200 once the job has ended (completed or failed), 202 while it still runs."""
    job = job_store.get_job(job_id)
    if job is None:
        return error_response(404, NOT_FOUND)
    finished = JobStatus(job["status"]).is_terminal
    return json_response(result_body(job), 200 if finished else 202)


def image(request: flask.Request, job_id: str, filename: str) -> flask.Response:
    """Stream a stored image from the bucket (``IMAGE_URL_MODE=api``)."""
    if load_settings().image_url_mode != "api" or not _IMAGE_FILE.match(filename):
        return error_response(404, "Image introuvable")
    if job_store.get_job(job_id) is None:
        return error_response(404, "Image introuvable")
    found = storage.download(f"{storage.IMAGES_PREFIX}/{job_id}/{filename}")
    if found is None:
        return error_response(404, "Image introuvable")
    data, content_type = found
    response = flask.Response(data, content_type=content_type)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


_HANDLERS: dict[str, Callable[..., flask.Response]] = {
    "health": health,
    "openapi": openapi,
    "generate": generate,
    "status": status,
    "result": result,
    "image": image,
}


def _json_body(request: flask.Request, limit: int) -> tuple[Any, flask.Response | None]:
    """The parsed JSON body, or the 4xx response explaining why there is none."""
    if request.mimetype != "application/json":
        return None, error_response(400, "Content-Type doit être application/json")
    request.max_content_length = limit
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return None, error_response(413, f"Requête trop volumineuse (maximum {limit} octets)")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None, error_response(400, "Corps JSON invalide")
    if not isinstance(body, dict):
        return None, error_response(400, "Le corps de la requête doit être un objet JSON")
    return body, None


def _refused_url_field(params: GenerateRequest, allow_private: bool) -> str:
    """Name of a URL field whose host is a literal private/local address, else ''.

    Host names are resolved later, by the worker, at fetch time; this only
    rejects the obvious cases without a DNS lookup in the request path.
    """
    if allow_private:
        return ""
    for name in ("input_image_url", "webhook_url"):
        url = getattr(params, name)
        host = (urlsplit(url).hostname or "") if url else ""
        if host == "localhost" or host.endswith(".localhost") or host == "metadata.google.internal":
            return name
        try:
            if host and not is_public_address(host):
                return name
        except ValueError:
            continue
    return ""


def _with_cors(request: flask.Request, response: flask.Response) -> flask.Response:
    allowed = load_settings().cors_allowed_origins
    origin = request.headers.get("Origin", "")
    if allowed == "*":
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in {o.strip() for o in allowed.split(",")}:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        "Content-Type, Authorization, X-API-Key, Idempotency-Key"
    )
    response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After"
    response.headers["Access-Control-Max-Age"] = "3600"
    return response
