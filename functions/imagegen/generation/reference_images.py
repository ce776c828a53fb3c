"""A job's reference images: ``input_image_url`` first, then ``input_image_urls``.

Each is an ``http(s)`` URL (``source_image.fetch``: the outbound rules) or a
``gs://`` object in the images bucket or one of ``INPUT_IMAGE_BUCKETS``,
read with the worker's own identity. All are fetched in parallel, each within
``source_image.TOTAL_SECONDS``, and checked (type, size, pixels) before any
model call; the first that fails fails the job with a message naming it (its
position and URL). On Vertex AI a ``gs://`` image is passed to the model as a
file URI (``SourceImage.uri``), not as bytes.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from imagegen import storage
from imagegen.config import Settings, load_settings
from imagegen.generation.gemini import SourceImage
from imagegen.generation.imaging import ImageError, prepare_input
from imagegen.generation.source_image import TOO_SLOW, TOTAL_SECONDS, SourceImageError, fetch
from imagegen.google_api import errors

GS_URI = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/([^\r\n]{1,1024})\Z")
_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def allowed_buckets(settings: Settings) -> list[str]:
    """Buckets a ``gs://`` reference image may come from."""
    extra = [name.strip() for name in settings.input_image_buckets.split(",") if name.strip()]
    return list(dict.fromkeys([settings.images_bucket, *extra]))


def urls(request: dict[str, Any]) -> list[str]:
    """The job's reference images in order (``input_image_url`` counts as the first)."""
    first = [request["input_image_url"]] if request.get("input_image_url") else []
    return first + list(request.get("input_image_urls") or [])


def fetch_all(request: dict[str, Any]) -> list[SourceImage]:
    """Every reference image, checked; ``SourceImageError`` names the first that failed."""
    wanted = urls(request)
    if not wanted:
        return []
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="input-image") as pool:
        futures = [pool.submit(_one, url) for url in wanted]
        for position, (url, future) in enumerate(zip(wanted, futures), start=1):
            error = future.exception()
            if isinstance(error, SourceImageError):
                # Appended, not prefixed: the message keeps its "Image source ..." head.
                raise SourceImageError(f"{error} (image de référence {position} : {url[:200]})") from error
            if error is not None:
                raise error
        return [future.result() for future in futures]


def _one(url: str) -> SourceImage:
    match = GS_URI.match(url)
    return _from_bucket(url, match[1], match[2]) if match else fetch(url)


def _from_bucket(uri: str, bucket: str, name: str) -> SourceImage:
    """A ``gs://`` object, read as the worker (capped like a download)."""
    settings = load_settings()
    if bucket not in allowed_buckets(settings):
        raise SourceImageError(f"Image source refusée : bucket {bucket} non autorisé")
    deadline = time.monotonic() + TOTAL_SECONDS  # the same cap as a download, both calls together
    try:
        if storage.object_size(bucket, name, timeout=TOTAL_SECONDS) > settings.input_image_max_bytes:
            mib = settings.input_image_max_bytes // (1024 * 1024)
            raise SourceImageError(f"Image source trop volumineuse (plus de {mib} Mo)")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SourceImageError(TOO_SLOW)
        original = storage.read_object(bucket, name, timeout=remaining).content
    except errors.NotFound as exc:
        raise SourceImageError("Image source inaccessible : objet introuvable") from exc
    except errors.PermissionDenied as exc:
        raise SourceImageError("Image source refusée : lecture non autorisée") from exc
    except httpx2.TimeoutException as exc:
        raise SourceImageError(TOO_SLOW) from exc
    try:
        data, mime_type = prepare_input(original)
    except ImageError as exc:
        raise SourceImageError(f"Image source invalide : {exc}") from exc
    return SourceImage(data=data, mime_type=mime_type, uri=uri, uri_mime_type=_original_type(original))


def _original_type(data: bytes) -> str | None:
    """The stored object's own image type (what Vertex reads at the URI), if the model takes it."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _MIME_TYPES.get(image.format or "")
