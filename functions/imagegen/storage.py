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

The bucket is read and written over Cloud Storage's JSON API
(``clients.storage_api``, a ``google_api.RestApi``): google-cloud-storage,
with requests and google-resumable-media behind it, is imported only to sign
URLs (V4 signing is what that SDK is for).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from imagegen.clients import shared, storage_api
from imagegen.config import load_settings
from imagegen.google_api import errors

if TYPE_CHECKING:
    import httpx2

    from imagegen.google_api.auth import HttpxRequest

IMAGES_PREFIX = "generated_images"
_CACHE_CONTROL = "private, max-age=86400"
_PAGE_SIZE = 1000  # objects per listing page: the API's maximum


def object_name(job_id: str, index: int, extension: str) -> str:
    return f"{IMAGES_PREFIX}/{job_id}/image_{index}.{extension}"


def thumbnail_name(job_id: str, index: int) -> str:
    return f"{IMAGES_PREFIX}/{job_id}/image_{index}_thumb.webp"


def _objects_path(bucket: str) -> str:
    return f"/storage/v1/b/{quote(bucket, safe='')}/o"


def _object_path(bucket: str, name: str) -> str:
    """The object's JSON API path: its name is one path segment, slashes percent-encoded too."""
    return f"{_objects_path(bucket)}/{quote(name, safe='')}"


def upload(name: str, data: bytes, content_type: str) -> int:
    """Write one image; its generation.

    One multipart request (the object's metadata, then its bytes), sent again
    on transient errors: the name is deterministic, so a repeat rewrites the
    same object with the same bytes.
    """
    bucket = load_settings().images_bucket
    metadata = {"name": name, "contentType": content_type, "cacheControl": _CACHE_CONTROL}
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
        json.dumps(metadata).encode(),
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
        data,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    response = storage_api().request(
        "POST",
        f"/upload{_objects_path(bucket)}",
        params={"uploadType": "multipart"},
        content=b"".join(parts),
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        idempotent=True,
    )
    return int(response.json()["generation"])


def delete(name: str, generation: int | None = None) -> None:
    """Remove an object if it exists (best effort: a leftover is only wasted bytes).

    With ``generation``, only that version: an object rewritten since (by a
    newer delivery) is left alone (``ifGenerationMatch``: 412, ignored).
    """
    params = {"ifGenerationMatch": str(generation)} if generation is not None else None
    path = _object_path(load_settings().images_bucket, name)
    try:
        storage_api().request("DELETE", path, params=params, idempotent=True)
    except (errors.NotFound, errors.FailedPrecondition):
        pass


def delete_job_images(job_id: str) -> None:
    """Remove every stored image of a job (cancelled jobs keep none)."""
    for name in _names(f"{IMAGES_PREFIX}/{job_id}/"):
        delete(name)


def _names(prefix: str, page_size: int = _PAGE_SIZE) -> Iterator[str]:
    """The names of the images bucket's objects under ``prefix``, page after page."""
    params = {"prefix": prefix, "maxResults": str(page_size), "fields": "items(name),nextPageToken"}
    path = _objects_path(load_settings().images_bucket)
    while True:
        page = storage_api().call("GET", path, params=params, idempotent=True)
        yield from (item["name"] for item in page.get("items", []))
        if not page.get("nextPageToken"):
            return
        params = {**params, "pageToken": page["nextPageToken"]}


def download(name: str) -> tuple[bytes, str] | None:
    """The object's bytes and Content-Type, or None when it does not exist."""
    try:
        response = read_object(load_settings().images_bucket, name)
    except errors.NotFound:
        return None
    return response.content, response.headers.get("content-type") or "application/octet-stream"


def object_size(bucket: str, name: str, *, timeout: float | None = None) -> int:
    """The object's size in bytes, from its metadata; raises ``errors.ApiError`` (``NotFound``...)."""
    path = _object_path(bucket, name)
    resource = storage_api().request("GET", path, params={"fields": "size"}, idempotent=True, timeout=timeout)
    return int(resource.json().get("size") or 0)


def read_object(bucket: str, name: str, *, timeout: float | None = None) -> httpx2.Response:
    """The object's media response (``.content``, its ``Content-Type``); raises ``errors.ApiError``."""
    path = _object_path(bucket, name)
    return storage_api().request("GET", path, params={"alt": "media"}, idempotent=True, timeout=timeout)


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


@shared
def _signing_client() -> Any:
    """The official client, only to sign (it holds the signing credentials)."""
    from google.cloud import storage  # type: ignore[attr-defined]

    return storage.Client(project=load_settings().project, credentials=_signing_credentials())


@shared
def _refresh_transport() -> HttpxRequest:
    """google-auth's transport to refresh the signing credentials: httpx2, not requests."""
    from imagegen.google_api.auth import HttpxRequest
    from imagegen.google_api.rest import http_client

    return HttpxRequest(http_client())


def _signed_url(name: str) -> str:
    from google.auth import credentials as auth_credentials

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
            credentials.refresh(_refresh_transport())
        options["service_account_email"] = credentials.service_account_email
        options["access_token"] = credentials.token
    blob = _signing_client().bucket(settings.images_bucket).blob(name)
    return blob.generate_signed_url(**options)
