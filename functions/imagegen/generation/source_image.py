"""Download ``input_image_url`` without letting it reach inside our network.

Every hop (the URL and each redirect) must be http(s) and resolve only to
public addresses: loopback, private, link-local (the metadata server at
169.254.169.254 / metadata.google.internal), multicast, reserved and
unspecified ranges are refused, IPv4-mapped IPv6 forms included. Redirects,
time and bytes are capped, and the body must decode as a bounded-size image.
``ALLOW_PRIVATE_IMAGE_URLS`` lifts the address check; it exists for tests
that serve images from loopback and is off by default.

Known limit: the address is checked at resolution time, then httpx
resolves again to connect; a DNS-rebinding attacker with a TTL of zero could
race the two. Cloud Functions egress without a VPC connector reaches no
private network, which bounds the damage to the metadata server, and that
answers only with the ``Metadata-Flavor`` header we never send.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from imagegen.config import load_settings
from imagegen.generation.gemini import SourceImage
from imagegen.generation.imaging import ImageError, prepare_input

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 3
_TOTAL_SECONDS = 20.0
_USER_AGENT = "imagegen-worker/1.0 (+input_image_url fetch)"


class SourceImageError(Exception):
    """The source image cannot be used; the message is the job's error."""


def check_url_target(url: str) -> None:
    """Raise ``SourceImageError`` unless every address ``url``'s host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SourceImageError("Image source refusée : seules les URL http(s) sont acceptées")
    if load_settings().allow_private_image_urls:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceImageError(f"Image source inaccessible : hôte inconnu ({parts.hostname})") from exc
    for info in infos:
        if not is_public_address(str(info[4][0])):
            raise SourceImageError(
                "Image source refusée : l'adresse pointe vers un réseau privé ou local"
            )


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv6 scope ids ignored)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def fetch(url: str) -> SourceImage:
    """The image at ``url``, normalised for the model (see ``imaging.prepare_input``)."""
    import httpx

    max_bytes = load_settings().input_image_max_bytes
    deadline = time.monotonic() + _TOTAL_SECONDS
    timeout = httpx.Timeout(10.0, connect=5.0)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url_target(url)
            try:
                with client.stream(
                    "GET", url, headers={"User-Agent": _USER_AGENT, "Accept": "image/*"}
                ) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise SourceImageError(
                            f"Image source inaccessible (HTTP {response.status_code})"
                        )
                    data = _read_capped(response, max_bytes, deadline)
            except httpx.HTTPError as exc:
                raise SourceImageError(
                    f"Image source inaccessible : {type(exc).__name__}"
                ) from exc
            try:
                data, mime_type = prepare_input(data)
            except ImageError as exc:
                raise SourceImageError(f"Image source invalide : {exc}") from exc
            return SourceImage(data=data, mime_type=mime_type)
    raise SourceImageError(f"Image source refusée : plus de {MAX_REDIRECTS} redirections")


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    too_big = SourceImageError(
        f"Image source trop volumineuse (plus de {max_bytes // (1024 * 1024)} Mo)"
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise too_big
        if time.monotonic() > deadline:
            raise SourceImageError("Image source inaccessible : délai de téléchargement dépassé")
        chunks.append(chunk)
    return b"".join(chunks)
