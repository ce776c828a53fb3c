"""Structured JSON logs that Cloud Logging parses from stdout.

Each record is one JSON line with ``severity``, ``message``, and when known
``job_id`` and ``logging.googleapis.com/trace`` (so the worker's lines join
the API request that created the job in Cloud Trace and Logs Explorer).
The request context lives in ``contextvars`` so concurrent requests served by
threads of one instance never mix their ids.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

TRACE_HEADER = "X-Cloud-Trace-Context"

_trace: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="")
_job_id: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="")

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as the JSON structure Cloud Logging's agent expects."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        job_id = getattr(record, "job_id", "") or _job_id.get()
        if job_id:
            entry["job_id"] = job_id
        trace_id, _, span = _trace.get().partition("/")
        if trace_id:
            entry["logging.googleapis.com/trace"] = f"projects/{self._project}/traces/{trace_id}"
            span_id = span.split(";")[0]
            if span_id:
                entry["logging.googleapis.com/spanId"] = span_id
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(project: str, level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON lines (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(project))
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "httpx2", "httpcore2", "google_genai", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def log_context(trace: str = "", job_id: str = "") -> Iterator[None]:
    """Attach a trace header value and/or a job id to every record in the block."""
    tokens = []
    if trace:
        tokens.append((_trace, _trace.set(trace)))
    if job_id:
        tokens.append((_job_id, _job_id.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_trace() -> str:
    """The ``X-Cloud-Trace-Context`` value of the request being served."""
    return _trace.get()


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` argument adding structured fields to one record."""
    return {"extra": {"fields": values}}
