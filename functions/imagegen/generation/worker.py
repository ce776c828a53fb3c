"""The Cloud Tasks target that turns a PENDING job into images.

Cloud Tasks delivers at least once, so each delivery first claims the job's
lease (``job_store.claim_job``):

* finished job: answer 200 and do nothing (no second round of model calls);
* lease held by another live delivery: answer 409, Cloud Tasks retries later;
* otherwise run it. Images already stored by an earlier, interrupted
  delivery are kept: only the missing ones are generated, under the same
  deterministic object names, so a job never holds more than N images.

Model and input errors fail the job for good (answer 200: retrying would not
help). A Gemini quota error (429 after the SDK's retries) answers 429 and an
infrastructure error 500, so Cloud Tasks retries with its backoff. On the
queue's last attempt (``WORKER_MAX_ATTEMPTS``) the job is failed instead, even
when that delivery finds the lease busy, so no job is left hanging; a worker
that dies on its last attempt is caught by the sweeper (``sweeper``).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

import flask

from imagegen import job_store, storage, task_auth, usage
from imagegen.config import load_settings
from imagegen.generation import gemini, imaging, model_catalog, pricing, reference_images, source_image
from imagegen.generation.timings import JobTimings
from imagegen.http import json_response, request_context
from imagegen.job_store import LeaseLost
from imagegen.logs import fields, log_context
from imagegen.models import JOB_ID_PATTERN, MAX_SEED, JobStatus
from imagegen.results import iso

logger = logging.getLogger(__name__)

_GENERATING_START, _GENERATING_END = 10, 90


class _JobFailed(Exception):
    """A permanent failure: the job ends FAILED with this message, ``code`` and ``safety``."""

    def __init__(self, message: str, code: str, safety: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.safety = safety

    @classmethod
    def of(cls, error: gemini.GeminiError) -> _JobFailed:
        return cls(error.message, error.code, error.safety)


class _DeadlineExceeded(Exception):
    """``timeout_seconds`` ran out while the model calls were running."""


# Failures of one image (not of the job's setup): with allow_partial the job goes on without it.
_IMAGE_OUTCOMES = frozenset({"content_blocked", "no_image"})


class _RetryLater(Exception):
    """A failure the queue's backoff may outlast (Gemini quota): answer 429."""


_RETRY_COUNT = re.compile(r"[0-9]{1,4}")


def handle(request: flask.Request) -> flask.Response:
    """Authenticate the queue, then run the job named in the task body."""
    with request_context(request):
        refused = task_auth.refusal(request, audience=load_settings().worker_url)
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        job_id = body.get("job_id") if isinstance(body, dict) else None
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
            # Retrying a malformed task would never succeed: drop it loudly.
            logger.error("malformed worker task body dropped")
            return json_response({"outcome": "dropped"})
        task = request.headers.get("X-CloudTasks-TaskName", "direct")
        retries = request.headers.get("X-CloudTasks-TaskRetryCount", "0")
        attempt = (int(retries) if _RETRY_COUNT.fullmatch(retries) else 0) + 1
        with log_context(job_id=job_id):
            outcome, status = run(job_id, f"{task}:{uuid.uuid4().hex[:12]}", attempt)
        return json_response({"job_id": job_id, "outcome": outcome}, status)


def run(job_id: str, worker_id: str, attempt: int) -> tuple[str, int]:
    """Claim and run one job; returns (outcome, HTTP status for Cloud Tasks)."""
    settings = load_settings()
    timings = JobTimings()
    try:
        claim = job_store.claim_job(job_id, worker_id, settings.job_lease_seconds)
    except Exception:
        # The commit may have been applied even though the call failed: give the
        # lease back (only if it is ours) so the task's retry does not wait for it.
        logger.exception("claim failed", **fields(attempt=attempt))
        _release(job_id, worker_id)
        return "retry", 500
    last = attempt >= settings.worker_max_attempts
    if claim.outcome == "busy" and last:
        # The queue gives up after this answer: nobody would end the job.
        logger.warning("last attempt found the lease busy; failing the job", **fields(attempt=attempt))
        job_store.fail_job(job_id, job_store.GAVE_UP, "internal")
        return "failed", 200
    if claim.outcome != "run":
        logger.info("delivery not run: %s", claim.outcome, **fields(attempt=attempt))
        return claim.outcome, 409 if claim.outcome == "busy" else 200
    logger.info("job claimed", **fields(attempt=attempt, worker_id=worker_id))
    images: dict[str, Any] = dict(claim.job.get("images") or {})  # kept up to date by _process
    billed = threading.Event()  # set once a model call starts (images already stored count)
    if images:
        billed.set()
    try:
        _process(claim.job, worker_id, timings, images, billed)
    except LeaseLost:
        logger.info("job cancelled, taken over or out of lease; stopping")
        return "stopped", 200
    except _JobFailed as exc:
        _finish_failed(job_id, worker_id, exc, images, billed)
        return "failed", 200
    except _RetryLater as exc:
        logger.warning("retrying later: %s", exc, **fields(attempt=attempt))
        if last:
            _finish_failed(job_id, worker_id, _JobFailed(str(exc), "quota_exhausted"), images, billed)
            return "failed", 200
        _release(job_id, worker_id)
        return "retry", 429
    except Exception:
        logger.exception("job attempt crashed", **fields(attempt=attempt))
        if last:
            _finish_failed(job_id, worker_id, _JobFailed(job_store.GAVE_UP, "internal"), images, billed)
            return "failed", 200
        _release(job_id, worker_id)
        return "retry", 500
    return "completed", 200


def _release(job_id: str, worker_id: str) -> None:
    try:
        job_store.release_lease(job_id, worker_id)
    except Exception:  # the lease then simply expires after JOB_LEASE_SECONDS
        logger.warning("could not release the lease", exc_info=True)


def _finish_failed(
    job_id: str, worker_id: str, failure: _JobFailed, images: dict[str, Any], billed: threading.Event
) -> None:
    """End the job FAILED with its typed error; a failed job keeps none of its ``images``.

    ``billed`` is false when no model call started (an input image refused, a deadline
    passed in the queue): nothing was spent on Gemini.
    """
    logger.warning("job failed: %s", failure, **fields(error_code=failure.code))
    try:
        job_store.set_status(
            job_id,
            worker_id,
            JobStatus.FAILED,
            progress=100,
            errors=[str(failure)],
            error_code=failure.code,
            safety=failure.safety,
            images={},
            billed=billed.is_set(),
        )
    except LeaseLost:
        logger.info("job already ended elsewhere")
        return
    for record in images.values():
        for name in (record["object_name"], record.get("thumbnail_object_name")):
            if name:
                storage.delete(name)


def _process(
    job: dict[str, Any],
    worker_id: str,
    timings: JobTimings,
    images: dict[str, Any],
    billed: threading.Event,
) -> None:
    """Run the job; ``images`` (index → record) holds what is stored, as it grows."""
    timings.queued_since(job["created_at"])
    timings.lap("storage")  # the claim
    job_id = job["job_id"]
    request = job["request"]
    model = request.get("model") or load_settings().gemini_model  # jobs from before `model`
    target = imaging.plan(request["size"], request["quality"], model_catalog.spec(model))
    prompt = gemini.compose_prompt(request["prompt"], request["style"])
    started = time.monotonic()
    deadline = _Deadline(job.get("deadline_at"), request.get("timeout_seconds"))
    deadline.check()
    try:
        sources = reference_images.fetch_all(request)
    except source_image.SourceImageError as exc:
        raise _JobFailed(str(exc), exc.error_code) from exc
    timings.lap("input_fetch")
    deadline.check()

    total = request["num_images"]
    fallbacks = tuple(model_catalog.fallbacks(model, load_settings()))
    allow_partial = bool(request.get("allow_partial"))
    skipped: dict[int, dict[str, Any]] = {}  # allow_partial: index → why it is missing
    job_store.set_status(
        job_id, worker_id, JobStatus.GENERATING, progress=_progress(len(images), total)
    )
    timings.lap("storage")
    lock = threading.Lock()

    def make(index: int) -> None:
        timer = timings.image()
        seed = _image_seed(request.get("seed"), index)
        billed.set()
        with timer.phase("model"):
            try:
                generated = gemini.generate_image(
                    prompt,
                    target.aspect_ratio,
                    target.image_size,
                    sources,
                    model=model,
                    fallbacks=fallbacks,
                    seed=seed,
                    timeout_seconds=deadline.remaining(),
                )
            except gemini.GeminiError as exc:
                if not (allow_partial and exc.code in _IMAGE_OUTCOMES):
                    raise
                logger.warning("image %d/%d missing: %s", index, total, exc.message)
                with lock:
                    skipped[index] = {"index": index, "error_code": exc.code, "message": exc.message}
                    if exc.safety:
                        skipped[index]["safety"] = exc.safety
                return
        with timer.phase("post_processing"):
            encoded = imaging.render(generated.data, target, request["format"], request["quality"])
        name = storage.object_name(job_id, index, encoded.extension)
        thumbnail = storage.thumbnail_name(job_id, index)
        generation = storage.upload(name, encoded.data, encoded.content_type)
        thumbnail_generation = storage.upload(thumbnail, encoded.thumbnail, "image/webp")
        record = {
            "object_name": name,
            "thumbnail_object_name": thumbnail,
            "format": encoded.format,
            "content_type": encoded.content_type,
            "size_bytes": len(encoded.data),
            "dimensions": encoded.dimensions,
            "seed": seed,
            "width": encoded.width,
            "height": encoded.height,
            "sha256": hashlib.sha256(encoded.data).hexdigest(),
            "description": request["prompt"],
            "input_tokens": generated.input_tokens,
            "output_tokens": generated.output_tokens,
            "usage": pricing.usage_record(generated.model, target.image_size, _call_usage(generated)),
            "model": generated.model,
            "model_version": generated.model_version,
            "unavailable_models": list(generated.unavailable),
        }
        with lock:
            done = len(images) + 1
            try:
                job_store.update_owned(
                    job_id,
                    worker_id,
                    {
                        f"images.`{index}`": record,
                        "progress": _progress(done, total),
                        "message": f"Génération en cours... ({done}/{total})",
                    },
                )
            except LeaseLost as lost:
                if lost.keeps_no_images:  # leave no image behind, but only the ones written here
                    storage.delete(name, generation=generation)
                    storage.delete(thumbnail, generation=thumbnail_generation)
                raise
            images[str(index)] = record
        timer.done()
        logger.info("image %d/%d generated", index, total, **fields(dimensions=encoded.dimensions))

    missing = [i for i in range(1, total + 1) if str(i) not in images]
    try:
        _run_parallel(make, missing, deadline.remaining())
    except _DeadlineExceeded as exc:
        raise deadline.failure() from exc
    except gemini.GeminiError as exc:
        # A call bounded by the time left can time out a moment before the wait does:
        # past the deadline, the deadline is the reason, not the model.
        deadline.check()
        if exc.code == "quota_exhausted":
            raise _RetryLater(exc.message) from exc
        raise _JobFailed.of(exc) from exc
    except imaging.ImageError as exc:
        raise _JobFailed(f"Image renvoyée par Gemini inutilisable : {exc}", "no_image") from exc
    timings.end_parallel()
    if not images:  # allow_partial, and every image is missing
        first = skipped[min(skipped)]
        raise _JobFailed(first["message"], first["error_code"], first.get("safety"))

    job_store.set_status(job_id, worker_id, JobStatus.SAVING, progress=95)
    timings.lap("storage")
    ordered = [images[str(i)] for i in range(1, total + 1) if str(i) in images]
    job_usage = pricing.total([image["usage"] for image in ordered if "usage" in image])
    metadata = {
        "model_name": ordered[0].get("model") or model,
        "version": ordered[0]["model_version"],
        "generation_time_seconds": round(time.monotonic() - started, 2),
        "input_tokens": sum(image["input_tokens"] for image in ordered),
        "output_size_bytes": sum(image["size_bytes"] for image in ordered),
        "timestamp": iso(job_store.utcnow()),
        "timings": timings.as_metadata(),
        "usage": job_usage,
    }
    gone = sorted({name for image in ordered for name in image.get("unavailable_models") or []})
    if gone:
        metadata["fallbacks"] = {"unavailable": gone, "used": ordered[0].get("model") or model}
    job_store.set_status(
        job_id,
        worker_id,
        JobStatus.COMPLETED,
        progress=100,
        message=f"{len(ordered)} image(s) générée(s) avec succès",
        metadata=metadata,
        **usage.completion_fields(job_usage, job_store.utcnow()),
        missing_images=[skipped[i] for i in sorted(skipped)] or None,
    )
    logger.info("job completed", **fields(images=len(ordered), seconds=metadata["generation_time_seconds"]))


def _run_parallel(make: Any, indexes: list[int], timeout: float | None = None) -> None:
    """Run ``make`` for every index at once; re-raise the first failure.

    With ``timeout``, raise ``_DeadlineExceeded`` when it passes first: calls still
    running are left to end on their own (their write finds the job FAILED and
    deletes what they stored).
    """
    if not indexes:
        return
    pool = ThreadPoolExecutor(max_workers=len(indexes), thread_name_prefix="gemini")
    # Each thread gets a copy of the context so its logs keep the job id and trace.
    futures = [pool.submit(contextvars.copy_context().run, make, i) for i in indexes]
    _, pending = wait(futures, timeout=None if timeout is None else max(timeout, 0))
    pool.shutdown(wait=False, cancel_futures=True)
    if pending:
        raise _DeadlineExceeded()
    errors = [error for f in futures if (error := f.exception()) is not None]
    if errors:
        raise errors[0]


class _Deadline:
    """A job's ``deadline_at`` (``timeout_seconds`` after creation), if it has one."""

    def __init__(self, at: datetime | None, seconds: int | None) -> None:
        self.at = at
        self.seconds = seconds

    def remaining(self) -> float | None:
        return None if self.at is None else (self.at - job_store.utcnow()).total_seconds()

    def failure(self) -> _JobFailed:
        return _JobFailed(job_store.deadline_message(self.seconds or 0), "deadline_exceeded")

    def check(self) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise self.failure()


def _image_seed(job_seed: int | None, index: int) -> int:
    """Image ``index``'s seed: the job's ``seed + index - 1`` (wrapping), else a random one."""
    if job_seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    return (job_seed + index - 1) % (MAX_SEED + 1)


def _call_usage(generated: gemini.GeneratedImage) -> pricing.CallUsage:
    return pricing.CallUsage(
        input_tokens=generated.input_tokens,
        output_tokens=generated.output_tokens,
        thinking_tokens=generated.thinking_tokens,
        output_image_tokens=generated.output_image_tokens,
    )


def _progress(done: int, total: int) -> int:
    return _GENERATING_START + (_GENERATING_END - _GENERATING_START) * done // total
