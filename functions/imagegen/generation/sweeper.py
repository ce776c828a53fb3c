"""The sweeper: queues what the API could not, and ends what the queue gave up on.

Cloud Scheduler POSTs to it every 5 minutes (``sweeper_schedule``; OIDC token for
``TASKS_SERVICE_ACCOUNT``, audience ``SWEEPER_URL``, checked like a task's);
by hand: ``python -m imagegen.generation.sweeper`` (run from ``functions/``,
against the emulators when their variables are set). Each run:

1. **Unqueued jobs**: PENDING with ``queued_at`` None and older than
   ``SWEEPER_QUEUE_AFTER_SECONDS`` (the API stored them but could not create
   the task): their task is created, named after the job, so a task the API
   did create meanwhile is not duplicated.
2. **Quiet jobs**: unfinished, with nothing written (and no live lease) for
   ``SWEEPER_QUIET_AFTER_SECONDS``: the queue gave up or lost the task (a
   worker that crashed, timed out or ran out of memory on its last attempt).
   Each is re-queued under a new task name (``<job>-sweep<n>``: the old
   name stays taken for a while after its task ran), unless it was claimed
   ``WORKER_MAX_ATTEMPTS`` times already, swept ``MAX_SWEEPS`` times, or was
   never queued at all: then it fails. Decided in a transaction, so two
   sweeper runs at once act once.

3. **Overdue jobs**: unfinished past their ``deadline_at`` (``timeout_seconds``
   after creation; checked first): FAILED with ``deadline_exceeded``, and
   ``billed: false`` when no delivery ever claimed them. A running worker
   enforces its own deadline; this catches jobs stuck in the queue.

A run handles at most ``BATCH`` jobs of each kind; the next run continues.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import flask

from imagegen import job_store, job_tasks, task_auth
from imagegen.config import load_settings
from imagegen.http import json_response, request_context
from imagegen.logs import fields, log_context

logger = logging.getLogger(__name__)

BATCH = 100
MAX_SWEEPS = 3


def sweep() -> dict[str, list[str]]:
    """One pass over unqueued and quiet jobs; the ids it queued, re-queued and failed."""
    settings = load_settings()
    now = job_store.utcnow()
    report: dict[str, list[str]] = {"queued": [], "requeued": [], "failed": [], "errors": []}
    for job in job_store.overdue_jobs(now, BATCH):
        _act(job["job_id"], report, functools.partial(_expire, job=job, report=report))
    queue_before = now - timedelta(seconds=settings.sweeper_queue_after_seconds)
    for job in job_store.unqueued_jobs(queue_before, BATCH):
        _act(job["job_id"], report, lambda job_id: _queue(job_id, report))
    quiet_since = now - timedelta(seconds=settings.sweeper_quiet_after_seconds)
    for job in job_store.quiet_jobs(quiet_since, BATCH):
        _act(job["job_id"], report, lambda job_id: _recover(job_id, quiet_since, report))
    return report


def _act(job_id: str, report: dict[str, list[str]], action: Callable[[str], None]) -> None:
    """Run ``action`` for one job; a failure is logged and the sweep goes on."""
    with log_context(job_id=job_id):
        try:
            action(job_id)
        except Exception:
            logger.exception("sweeper could not handle the job")
            report["errors"].append(job_id)


def _expire(job_id: str, job: dict[str, Any], report: dict[str, list[str]]) -> None:
    """Fail a job past its ``timeout_seconds`` (one the worker never got to, or lost)."""
    message = job_store.deadline_message(job["request"].get("timeout_seconds") or 0)
    if job_store.fail_job(job_id, message, "deadline_exceeded"):
        logger.warning("sweeper failed a job past its deadline")
        report["failed"].append(job_id)


def _queue(job_id: str, report: dict[str, list[str]]) -> None:
    job_tasks.queue(job_id)
    logger.info("sweeper queued a job the API could not")
    report["queued"].append(job_id)


def _recover(job_id: str, quiet_since: datetime, report: dict[str, list[str]]) -> None:
    recovery = job_store.recover_quiet(
        job_id,
        quiet_since,
        max_attempts=load_settings().worker_max_attempts,
        max_sweeps=MAX_SWEEPS,
    )
    if recovery.action == "requeue":
        job_tasks.queue(job_id, task_id=f"{job_id}-sweep{recovery.sweeps}")
        logger.warning("sweeper re-queued a job its queue gave up on (sweep %d)", recovery.sweeps)
        report["requeued"].append(job_id)
    elif recovery.action == "fail":
        logger.warning("sweeper failed a job left behind: %s", recovery.message)
        report["failed"].append(job_id)


def handle(request: flask.Request) -> flask.Response:
    """HTTP entry point: POST from Cloud Scheduler (or the local stack), authenticated like a task."""
    with request_context(request):
        refused = task_auth.refusal(request, audience=load_settings().sweeper_url)
        if refused is not None:
            return refused
        report = sweep()
        logger.info("sweep done", **fields(**{name: len(ids) for name, ids in report.items()}))
        return json_response(report, 500 if report["errors"] else 200)


def main() -> int:
    """``python -m imagegen.generation.sweeper``: one sweep, its report as JSON on stdout."""
    from imagegen.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.project, "INFO")
    report = sweep()
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
