"""input_image_url fetching: address checks, redirects, time and size caps, image check.

The address rules themselves are tested in ``test_outbound``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from imagegen import outbound
from imagegen.config import load_settings
from imagegen.generation import source_image
from tests.loopback import LoopbackServer, QuietHandler


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    load_settings.cache_clear()
    yield monkeypatch
    load_settings.cache_clear()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


class _Handler(QuietHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:
        if self.path.startswith("/slow-hop/"):  # /slow-hop/<n>: 0.4 s, then a redirect to n-1
            time.sleep(0.4)
            left = int(self.path.rsplit("/", 1)[1])
            self.reply(302, headers={"Location": f"/slow-hop/{left - 1}" if left else "/photo.jpg"})
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.reply(status, body, headers)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.routes = {
        "/photo.jpg": (200, {"Content-Type": "image/jpeg"}, _jpeg()),
        "/text": (200, {"Content-Type": "text/plain"}, b"hello"),
        "/big": (200, {"Content-Type": "image/jpeg"}, b"\xff" * 3000),
        "/hop": (302, {"Location": "/photo.jpg"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/computeMetadata/v1/"}, b""),
    }
    loopback = LoopbackServer(_Handler, name="source-images")
    yield loopback.base_url
    loopback.close()


def test_loopback_server_refused_by_default(settings_env: pytest.MonkeyPatch, server: str) -> None:
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    with pytest.raises(source_image.SourceImageError, match="réseau privé ou local"):
        source_image.fetch(f"{server}/photo.jpg")


def test_redirect_to_metadata_refused_even_when_first_hop_allowed(
    settings_env: pytest.MonkeyPatch, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allow only the loopback test server: the redirect target is checked on its own.
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    real_check = outbound.is_public_address
    monkeypatch.setattr(outbound, "is_public_address", lambda a: str(a) == "127.0.0.1" or real_check(a))
    with pytest.raises(source_image.SourceImageError, match="réseau privé ou local"):
        source_image.fetch(f"{server}/to-metadata")


def test_fetch_follows_a_redirect_and_normalises(settings_env: pytest.MonkeyPatch, server: str) -> None:
    settings_env.setenv("ALLOW_PRIVATE_IMAGE_URLS", "true")
    image = source_image.fetch(f"{server}/hop")
    assert image.mime_type == "image/jpeg"
    assert Image.open(io.BytesIO(image.data)).size == (320, 200)


@pytest.mark.parametrize(
    ("path", "message"),
    [("/loop", "redirections"), ("/missing", "HTTP 404"), ("/text", "invalide"), ("/big", "volumineuse")],
)
def test_fetch_refusals(settings_env: pytest.MonkeyPatch, server: str, path: str, message: str) -> None:
    settings_env.setenv("ALLOW_PRIVATE_IMAGE_URLS", "true")
    settings_env.setenv("INPUT_IMAGE_MAX_BYTES", "2048")
    with pytest.raises(source_image.SourceImageError, match=message):
        source_image.fetch(f"{server}{path}")


def test_time_cap_covers_all_redirect_hops_together(settings_env: pytest.MonkeyPatch, server: str) -> None:
    """Three hops of 0.4 s each fit no 1 s budget, though every hop alone does."""
    settings_env.setenv("ALLOW_PRIVATE_IMAGE_URLS", "true")
    assert source_image.fetch(f"{server}/slow-hop/0", total_seconds=1.0).mime_type == "image/jpeg"
    started = time.monotonic()
    with pytest.raises(source_image.SourceImageError, match="délai"):
        source_image.fetch(f"{server}/slow-hop/2", total_seconds=1.0)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("location", "message"),
    [("http://127.0.0.1:99999/x.png", "URL invalide"), ("ftp://example.com/x.png", "http"),
     ("http://metadata.google.internal./computeMetadata/v1/", "réseau privé ou local"),
     ("http://[::1/x.png", "URL invalide"), ("//[zz]/x.png", "URL invalide"), ("http://a..b/x.png", "URL invalide")],
)
def test_bad_redirect_targets_fail_the_fetch_cleanly(
    settings_env: pytest.MonkeyPatch, server: str, monkeypatch: pytest.MonkeyPatch, location: str, message: str
) -> None:
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    real_check = outbound.is_public_address
    monkeypatch.setattr(outbound, "is_public_address", lambda a: str(a) == "127.0.0.1" or real_check(a))
    _Handler.routes["/bad-hop"] = (302, {"Location": location}, b"")
    with pytest.raises(source_image.SourceImageError, match=message):
        source_image.fetch(f"{server}/bad-hop")
