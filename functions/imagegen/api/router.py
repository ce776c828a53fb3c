"""The public HTTP API: the seed's routes, plus ``/openapi.json`` and image serving.

Routing uses Werkzeug's URL map (already shipped with functions-framework),
so unknown paths are 404 and wrong methods 405, both as JSON. Whatever the
client sends, the answer is a 2xx or a 4xx JSON error; 5xx is reserved for
the server's own state (no model configured: 500 as in the seed's table;
Firestore or Cloud Tasks unreachable: 503 with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import flask
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule

from imagegen import job_store, job_tasks, storage
from imagegen.api import auth, docs, long_poll, rate_limit, usage_api, web, webhook_secrets
from imagegen.api import events as job_events
from imagegen.api.openapi import openapi_document
from imagegen.config import GeminiBackend, load_settings
from imagegen.generation.gemini import NOT_CONFIGURED
from imagegen.http import ascii_int, error_response, is_infrastructure_error, json_response, request_context
from imagegen.logs import current_trace, fields, log_context
from imagegen.models import (
    CreateJobResponse,
    GenerateRequest,
    HealthResponse,
    JobListResponse,
    JobStatus,
    validation_messages,
)
from imagegen.results import result_body, status_body
from imagegen.webhooks import signing_secrets

logger = logging.getLogger(__name__)

NOT_FOUND = "Tâche introuvable"
CREATED = "Tâche de génération d'images créée avec succès"
UNAVAILABLE = "Service temporairement indisponible, réessayez dans quelques instants"
INTERNAL_ERROR = "Erreur interne du serveur"
_IMAGE_FILE = re.compile(r"^image_[1-4](?:\.(?:png|jpg|webp)|_thumb\.webp)\Z")  # an image or its thumbnail
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_RETRY_LATER = {"Retry-After": "5"}
_MAX_PAGE = 100

_ROUTES = Map(
    [
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/openapi.json", endpoint="openapi", methods=["GET"]),
        Rule("/docs", endpoint="docs", methods=["GET"]),
        Rule("/docs/<name>", endpoint="docs_asset", methods=["GET"]),
        Rule("/api/images/generate", endpoint="generate", methods=["POST"]),
        Rule("/api/images/status/<job_id>", endpoint="status", methods=["GET"]),
        Rule("/api/images/result/<job_id>", endpoint="result", methods=["GET"]),
        Rule("/api/images/cancel/<job_id>", endpoint="cancel", methods=["POST"]),
        Rule("/api/images/jobs", endpoint="jobs", methods=["GET"]),
        Rule("/api/images/events/<job_id>", endpoint="events", methods=["GET"]),
        Rule("/api/usage", endpoint="usage", methods=["GET"]),
        Rule("/api/webhooks/secret", endpoint="webhook_secret", methods=["GET"]),
        Rule("/api/webhooks/secret/rotate", endpoint="rotate_webhook_secret", methods=["POST"]),
        Rule(f"/{storage.IMAGES_PREFIX}/<job_id>/<filename>", endpoint="image", methods=["GET"]),
        Rule("/", endpoint="root", methods=["GET"]),
        Rule("/playground", endpoint="playground", methods=["GET"]),
        Rule("/playground/<name>", endpoint="playground_asset", methods=["GET"]),
    ],
    strict_slashes=False,
)
# Routes anyone may call; every other route needs a principal (see ``auth``).
# Image URLs are capabilities: unguessable job ids, like signed URLs.
_PUBLIC = frozenset(
    {"health", "openapi", "docs", "docs_asset", "image", "root", "playground", "playground_asset"}
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
    except MethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.valid_methods or []))
        return error_response(405, "Méthode non autorisée", headers={"Allow": allowed})
    except HTTPException:  # NotFound, and redirects we do not offer
        return error_response(404, "Route introuvable")
    handler = _HANDLERS[endpoint]
    try:
        if endpoint in _PUBLIC:
            return handler(request, **args)
        try:
            principal = auth.authenticate(request.headers, _query_key(request, endpoint))
        except auth.AuthError as exc:
            return error_response(exc.status, exc.message, headers=exc.headers)
        return handler(request, principal, **args)
    except Exception as exc:
        if is_infrastructure_error(exc):
            logger.warning("request failed: backend unavailable", exc_info=True, **fields(endpoint=endpoint))
            return error_response(503, UNAVAILABLE, headers=_RETRY_LATER)
        logger.exception("request failed: internal error", **fields(endpoint=endpoint))
        return error_response(500, INTERNAL_ERROR)


def _query_key(request: flask.Request, endpoint: str) -> str | None:
    """``?api_key=`` on the event stream only: browsers' EventSource cannot send headers."""
    return request.args.get("api_key") if endpoint == "events" else None


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


def generate(request: flask.Request, principal: auth.Principal) -> flask.Response:
    """Validate, store the PENDING job, queue its task; 202 with the job id.

    With an ``Idempotency-Key`` header, a repeat of the same request returns
    the same job (and queues nothing); the same key with another body is 422.
    """
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
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        return error_response(400, "Idempotency-Key doit faire 1 à 255 caractères ASCII visibles")
    if settings.gemini_backend is GeminiBackend.NONE:
        return error_response(500, NOT_CONFIGURED)
    if principal.method != "anonymous":
        wait = rate_limit.retry_after(principal.owner)
        if wait:
            message = f"Trop de tâches créées, réessayez dans {wait} s"
            return error_response(429, message, headers={"Retry-After": str(wait)})
    over_budget = usage_api.budget_refusal(principal)
    if over_budget is not None:
        return over_budget

    webhook = (
        {"url": params.webhook_url, "events": params.webhook_events}
        if params.webhook_url or params.webhook_events
        else None
    )
    if params.webhook_url:  # its deliveries are signed with the owner's key: make sure it exists
        signing_secrets.ensure(principal.owner)
    job = job_store.new_job(
        params.job_fields(),
        owner=principal.owner,
        webhook=webhook,
        trace=current_trace(),
        api_key=principal.key_hash,
    )
    if idempotency_key is None:
        job_store.create_job(job)
    else:
        key_id = _digest(principal.owner, idempotency_key)
        request_hash = _digest(params.model_dump_json())
        try:
            job, created = job_store.create_job_once(job, key=key_id, request_hash=request_hash)
        except job_store.IdempotencyConflict:
            return error_response(
                422, "Idempotency-Key déjà utilisée avec une requête différente"
            )
        if not created:
            if job_store.never_queued(job):
                _queue(job["job_id"])  # the first request could not queue it: try again
            return _created(job, replayed=True)
    _queue(job["job_id"])
    with log_context(job_id=job["job_id"]):
        logger.info("job created", **fields(num_images=params.num_images, size=params.size))
    return _created(job, replayed=False)


def _queue(job_id: str) -> None:
    """Queue the stored job; if that fails, it stays PENDING and the sweeper queues it.

    The job is accepted either way (202): its document is written, and the
    sweeper queues every PENDING job left unqueued (``job_tasks``).
    """
    with log_context(job_id=job_id):
        try:
            job_tasks.queue(job_id)
        except Exception:
            logger.exception("job stored but not queued; the sweeper will queue it")


def _created(job: dict[str, Any], *, replayed: bool) -> flask.Response:
    headers = {"Location": f"/api/images/status/{job['job_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(
        CreateJobResponse(job_id=job["job_id"], status=JobStatus.PENDING, message=CREATED),
        202,
        headers,
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _owned_job(job_id: str, principal: auth.Principal) -> dict[str, Any] | None:
    """The job if it exists and belongs to the caller: another owner's job is 'not found'."""
    job = job_store.get_job(job_id)
    return job if job is not None and job.get("owner") == principal.owner else None


def status(request: flask.Request, principal: auth.Principal, job_id: str) -> flask.Response:
    """The job's status with an ``ETag``; with ``?wait=N``, a long-poll (see ``long_poll``)."""
    wait = long_poll.wait_seconds(request)
    if isinstance(wait, flask.Response):
        return wait
    job = _owned_job(job_id, principal)
    if job is None:
        return error_response(404, NOT_FOUND)
    if wait:
        job = long_poll.wait_for_change(request, job, wait)
    return long_poll.status_response(job)


def events(request: flask.Request, principal: auth.Principal, job_id: str) -> flask.Response:
    """Server-Sent Events of the job's status until it ends (see ``events``)."""
    response = job_events.response(request, job_id, principal.owner)
    return response if response is not None else error_response(404, NOT_FOUND)


def result(request: flask.Request, principal: auth.Principal, job_id: str) -> flask.Response:
    """200 once the job has ended (completed, failed, cancelled), 202 while it still runs."""
    job = _owned_job(job_id, principal)
    if job is None:
        return error_response(404, NOT_FOUND)
    finished = JobStatus(job["status"]).is_terminal
    return json_response(result_body(job), 200 if finished else 202)


def cancel(request: flask.Request, principal: auth.Principal, job_id: str) -> flask.Response:
    """Stop an unfinished job: CANCELLED at once, the worker stops before its next image."""
    try:
        job = job_store.cancel_job(job_id, principal.owner)
    except job_store.AlreadyFinished as exc:
        return error_response(409, f"La tâche est déjà terminée ({exc.job['status']})")
    if job is None:
        return error_response(404, NOT_FOUND)
    with log_context(job_id=job_id):
        storage.delete_job_images(job_id)
        logger.info("job cancelled")
    return json_response(status_body(job))


def jobs(request: flask.Request, principal: auth.Principal) -> flask.Response:
    """The caller's jobs, newest first; ``cursor`` continues where a page ended."""
    args = request.args
    status_filter = args.get("status") or None
    if status_filter is not None and status_filter not in JobStatus.__members__:
        message = f"status doit être l'une des valeurs : {', '.join(JobStatus.__members__)}"
        return error_response(400, message)
    limit = ascii_int(args.get("limit", "20")) or 0
    if not 1 <= limit <= _MAX_PAGE:
        return error_response(400, f"limit doit être entre 1 et {_MAX_PAGE}")
    cursor = args.get("cursor") or None
    page = job_store.list_jobs(principal.owner, status=status_filter, limit=limit, after=cursor)
    if page is None:
        return error_response(400, "cursor invalide")
    next_cursor = page[-1]["job_id"] if len(page) == limit else None
    return json_response(
        JobListResponse(jobs=[status_body(job) for job in page], next_cursor=next_cursor)
    )


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
    "docs": docs.page,
    "docs_asset": docs.asset,
    "generate": generate,
    "status": status,
    "result": result,
    "cancel": cancel,
    "jobs": jobs,
    "events": events,
    "image": image,
    "usage": usage_api.usage_report,
    "webhook_secret": webhook_secrets.get_secret,
    "rotate_webhook_secret": webhook_secrets.rotate_secret,
    "root": web.root,
    "playground": web.playground,
    "playground_asset": web.asset,
}


def _json_body(request: flask.Request, limit: int) -> tuple[Any, flask.Response | None]:
    """The parsed JSON body, or the 4xx response explaining why there is none."""
    if request.mimetype != "application/json":
        return None, error_response(400, "Content-Type doit être application/json")
    # Bounded read: Content-Length may be absent (chunked) or lie. (Setting
    # request.max_content_length instead breaks functions-framework, which
    # drains the body after every request.)
    too_large = error_response(413, f"Requête trop volumineuse (maximum {limit} octets)")
    if (request.content_length or 0) > limit:
        return None, too_large
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        return None, too_large
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None, error_response(400, "Corps JSON invalide")
    if not isinstance(body, dict):
        return None, error_response(400, "Le corps de la requête doit être un objet JSON")
    return body, None


def _refused_url_field(params: GenerateRequest, allow_private: bool) -> str:
    """Name of a URL field whose host can only be local (a name or a literal), else ''.

    Host names are resolved later, when the worker or the webhook sender
    connects (``outbound``); this refuses, without a DNS lookup in the request
    path, what no resolver could make public.
    """
    if allow_private:
        return ""
    urls = [(name, getattr(params, name)) for name in ("input_image_url", "webhook_url")]
    urls += [(f"input_image_urls[{n}]", url) for n, url in enumerate(params.input_image_urls or [])]
    for name, url in urls:
        if url and not url.startswith("gs://"):
            from imagegen import outbound  # loads the HTTP client: only when a URL is sent

            if outbound.refused_literal(url):
                return name
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
        "Content-Type, Authorization, X-API-Key, Idempotency-Key, If-None-Match, Last-Event-ID"
    )
    response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After, ETag"
    response.headers["Access-Control-Max-Age"] = "3600"
    return response
