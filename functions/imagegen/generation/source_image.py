"""Download ``input_image_url`` without letting it reach inside our network.

Every hop (the URL and each redirect, at most ``MAX_REDIRECTS``) goes
through ``imagegen.outbound``: http(s) only, resolved once, refused unless
every address is public, connected to the address that was checked. The
whole download, all hops together, gets ``TOTAL_SECONDS`` (each hop's
timeouts are what is left of it) and ``INPUT_IMAGE_MAX_BYTES``; the body must
decode as a bounded-size image. ``ALLOW_PRIVATE_IMAGE_URLS`` (tests only)
lifts the address rules.
"""

from __future__ import annotations

import time
from urllib.parse import urljoin

import httpx2

from imagegen import outbound
from imagegen.config import load_settings
from imagegen.generation.gemini import SourceImage
from imagegen.generation.imaging import ImageError, prepare_input
from imagegen.http import ascii_int

MAX_REDIRECTS = 3
TOTAL_SECONDS = 20.0
_CONNECT_SECONDS = 5.0
_USER_AGENT = "imagegen-worker/1.0 (+input_image_url fetch)"
TOO_SLOW = "Image source inaccessible : délai de téléchargement dépassé"


class SourceImageError(Exception):
    """The source image cannot be used; the message is the job's error."""

    @property
    def error_code(self) -> str:
        """``input_image_unreachable`` (could not be fetched) or ``input_image_invalid``."""
        fetched = not str(self).startswith(("Image source inaccessible", "Image source refusée"))
        return "input_image_invalid" if fetched else "input_image_unreachable"


def _refusal(error: outbound.OutboundError) -> SourceImageError:
    head = "Image source inaccessible" if error.retryable else "Image source refusée"
    return SourceImageError(f"{head} : {error}")


def fetch(url: str, total_seconds: float = TOTAL_SECONDS) -> SourceImage:
    """The image at ``url``, normalised for the model (see ``imaging.prepare_input``)."""
    max_bytes = load_settings().input_image_max_bytes
    deadline = time.monotonic() + total_seconds
    with outbound.client(total_seconds) as client:
        for _ in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceImageError(TOO_SLOW)
            timeout = httpx2.Timeout(remaining, connect=min(_CONNECT_SECONDS, remaining))
            headers = {"User-Agent": _USER_AGENT, "Accept": "image/*"}
            try:
                with client.stream("GET", url, headers=headers, timeout=timeout) as response:
                    if response.is_redirect:
                        url = _redirect_target(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise SourceImageError(
                            f"Image source inaccessible (HTTP {response.status_code})"
                        )
                    data = _read_capped(response, max_bytes, deadline)
            except outbound.OutboundError as exc:
                raise _refusal(exc) from exc
            except httpx2.TimeoutException as exc:
                raise SourceImageError(TOO_SLOW) from exc
            except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
                raise SourceImageError(
                    f"Image source inaccessible : {type(exc).__name__}"
                ) from exc
            try:
                data, mime_type = prepare_input(data)
            except ImageError as exc:
                raise SourceImageError(f"Image source invalide : {exc}") from exc
            return SourceImage(data=data, mime_type=mime_type)
    raise SourceImageError(f"Image source refusée : plus de {MAX_REDIRECTS} redirections")


def _redirect_target(url: str, location: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError as exc:  # e.g. an unclosed or invalid [IPv6] host
        raise SourceImageError("Image source refusée : URL invalide : redirection illisible") from exc


def _read_capped(response: httpx2.Response, max_bytes: int, deadline: float) -> bytes:
    too_big = SourceImageError(
        f"Image source trop volumineuse (plus de {max_bytes // (1024 * 1024)} Mo)"
    )
    declared = ascii_int(response.headers.get("content-length"))
    if declared is not None and declared > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise too_big
        if time.monotonic() > deadline:
            raise SourceImageError(TOO_SLOW)
        chunks.append(chunk)
    return b"".join(chunks)
