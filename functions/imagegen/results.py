"""Shape stored job documents into the seed's status and result bodies.

Shared by the API (status/result routes) and the webhooks (completed
payload), so both always describe a job the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imagegen.models import ImageInfo, JobStatus, ResultMetadata, ResultResponse, StatusResponse
from imagegen.storage import object_uri, object_url


def iso(value: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, as the seed's webhook examples."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_body(job: dict[str, Any]) -> StatusResponse:
    return StatusResponse(
        job_id=job["job_id"],
        status=JobStatus(job["status"]),
        message=job["message"],
        progress=job["progress"],
        created_at=iso(job["created_at"]),
        updated_at=iso(job["updated_at"]),
        errors=job["errors"] or None,
        error_code=job.get("error_code"),
    )


def result_images(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed's ``images[]``, in image order, with URLs valid right now."""
    images = job.get("images") or {}
    return [
        ImageInfo(
            file_path=object_uri(record["object_name"]),
            url=object_url(record["object_name"]),
            description=record["description"],
            format=record["format"],
            size_bytes=record["size_bytes"],
            dimensions=record["dimensions"],
            seed=record.get("seed"),
            width=record.get("width"),
            height=record.get("height"),
            sha256=record.get("sha256"),
            thumbnail_url=_thumbnail_url(record),
            usage=record.get("usage"),
        ).model_dump(exclude_none=True)
        for _, record in sorted(images.items(), key=lambda item: int(item[0]))
    ]


def _thumbnail_url(record: dict[str, Any]) -> str | None:
    name = record.get("thumbnail_object_name")
    return object_url(name) if name else None


def result_metadata(job: dict[str, Any]) -> dict[str, Any]:
    """The seed's ``metadata`` object, recorded by the worker at completion."""
    return ResultMetadata(**job["metadata"]).model_dump(exclude_none=True)


def result_body(job: dict[str, Any]) -> ResultResponse:
    """Completed: images + metadata; failed: errors; otherwise status and progress."""
    status = JobStatus(job["status"])
    extra: dict[str, Any] = {"progress": job["progress"]}
    if status is JobStatus.COMPLETED:
        extra = {
            "images": result_images(job),
            "metadata": result_metadata(job),
            "missing_images": job.get("missing_images"),
        }
    elif status.is_terminal:
        extra = {
            "errors": job["errors"],
            "error_code": job.get("error_code"),
            "safety": job.get("safety"),
            "billed": job.get("billed"),
        }
    return ResultResponse(job_id=job["job_id"], status=status, message=job["message"], **extra)
