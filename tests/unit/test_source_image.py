"""input_image_url fetching: address checks, redirects, size caps, image check."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from imagegen.generation import source_image
from imagegen.config import load_settings
from PIL import Image

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

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
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


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "100.64.0.1", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
     "::ffff:169.254.169.254", "2002:7f00:0001::1", "ff02::1", "::"],
)
def test_non_public_addresses_refused(address: str) -> None:
    assert not source_image.is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_allowed(address: str) -> None:
    assert source_image.is_public_address(address)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/x.png", "http://localhost/x.png", "http://[::1]/x.png",
     "http://169.254.169.254/latest", "http://2130706433/x.png", "http://0x7f.1/x.png"],
)
def test_private_targets_refused_by_default(settings_env: pytest.MonkeyPatch, url: str) -> None:
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    with pytest.raises(source_image.SourceImageError, match="réseau privé ou local"):
        source_image.check_url_target(url)


def test_loopback_server_refused_by_default(settings_env: pytest.MonkeyPatch, server: str) -> None:
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    with pytest.raises(source_image.SourceImageError, match="réseau privé ou local"):
        source_image.fetch(f"{server}/photo.jpg")


def test_redirect_to_metadata_refused_even_when_first_hop_allowed(
    settings_env: pytest.MonkeyPatch, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allow only the loopback test server: the redirect target is checked on its own.
    settings_env.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    real_check = source_image.is_public_address
    monkeypatch.setattr(
        source_image, "is_public_address", lambda a: a == "127.0.0.1" or real_check(a)
    )
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
