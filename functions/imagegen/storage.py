"""Generated images in Cloud Storage, and the URLs clients fetch them from.

Object names are deterministic (``generated_images/<job_id>/image_<n>.<ext>``,
its thumbnail ``image_<n>_thumb.webp`` beside it) so a retried or duplicated worker overwrites rather than adds, and a job can
never hold more than ``num_images`` objects.

``IMAGE_URL_MODE`` decides the result URLs (computed when read, never stored,
because signed URLs expire):

* ``api`` (default): ``PUBLIC_BASE_URL/generated_images/...``, served by the
  API function from the bucket: the seed's URL shape, bucket stays private.
* ``public``: the object's public URL (the operator made the bucket public).
* ``signed``: a V4 signed URL valid ``SIGNED_URL_TTL_SECONDS``. With a key
  file the credentials sign locally; on Cloud Functions (no key) signing goes
  through IAM ``signBlob`` as the function's service account.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from imagegen.clients import shared, storage_client
from imagegen.config import load_settings

IMAGES_PREFIX = "generated_images"
_CACHE_CONTROL = "private, max-age=86400"


def object_name(job_id: str, index: int, extension: str) -> str:
    return f"{IMAGES_PREFIX}/{job_id}/image_{index}.{extension}"


def thumbnail_name(job_id: str, index: int) -> str:
    return f"{IMAGES_PREFIX}/{job_id}/image_{index}_thumb.webp"


def _bucket() -> Any:
    return storage_client().bucket(load_settings().images_bucket)


def upload(name: str, data: bytes, content_type: str) -> int | None:
    """Write one image (safe to repeat: the name is deterministic); its generation."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    blob = _bucket().blob(name)
    blob.cache_control = _CACHE_CONTROL
    blob.upload_from_string(data, content_type=content_type, retry=DEFAULT_RETRY)
    return blob.generation


def delete(name: str, generation: int | None = None) -> None:
    """Remove an object if it exists (best effort: a leftover is only wasted bytes).

    With ``generation``, only that version: an object rewritten since (by a
    newer delivery) is left alone.
    """
    from google.api_core.exceptions import NotFound, PreconditionFailed

    try:
        _bucket().blob(name).delete(if_generation_match=generation)
    except (NotFound, PreconditionFailed):
        pass


def delete_job_images(job_id: str) -> None:
    """Remove every stored image of a job (cancelled jobs keep none)."""
    for blob in storage_client().list_blobs(
        load_settings().images_bucket, prefix=f"{IMAGES_PREFIX}/{job_id}/"
    ):
        delete(blob.name)


def download(name: str) -> tuple[bytes, str] | None:
    """The object's bytes and Content-Type, or None when it does not exist."""
    from google.api_core.exceptions import NotFound

    blob = _bucket().blob(name)
    try:
        data = blob.download_as_bytes()
    except NotFound:
        return None
    return data, blob.content_type or "application/octet-stream"


def object_uri(name: str) -> str:
    return f"gs://{load_settings().images_bucket}/{name}"


def object_url(name: str) -> str:
    """The URL a browser GETs for this object, per ``IMAGE_URL_MODE``."""
    settings = load_settings()
    if settings.image_url_mode == "signed":
        return _signed_url(name)
    if settings.image_url_mode == "public":
        endpoint = settings.storage_emulator_host or "https://storage.googleapis.com"
        return f"{endpoint.rstrip('/')}/{settings.images_bucket}/{quote(name)}"
    return f"{settings.public_base_url}/{quote(name)}"


@shared
def _signing_credentials() -> Any:
    import google.auth

    credentials, _ = google.auth.default(
        scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    return credentials


def _signed_url(name: str) -> str:
    from google.auth import credentials as auth_credentials
    from google.auth.transport import requests

    settings = load_settings()
    credentials = _signing_credentials()
    options: dict[str, Any] = {
        "version": "v4",
        "method": "GET",
        "expiration": timedelta(seconds=settings.signed_url_ttl_seconds),
    }
    if settings.storage_emulator_host:
        options["api_access_endpoint"] = settings.storage_emulator_host
    if isinstance(credentials, auth_credentials.Signing):
        options["credentials"] = credentials
    else:
        if not credentials.valid:
            credentials.refresh(requests.Request())
        options["service_account_email"] = credentials.service_account_email
        options["access_token"] = credentials.token
    return _bucket().blob(name).generate_signed_url(**options)
