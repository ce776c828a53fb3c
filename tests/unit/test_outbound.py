"""The outbound rules (creation-time URL checks) and the pinned connection (request time)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from imagegen import outbound
from imagegen.config import load_settings
from tests.loopback import LoopbackServer, QuietHandler
from tests.tokens import _key_and_cert
from tests.url_forms import BAD_URLS, LOCAL_URLS, PUBLIC_URLS


@pytest.fixture
def private_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings cleared around a test; ``ALLOW_PRIVATE_IMAGE_URLS`` off unless the test sets it."""
    monkeypatch.delenv("ALLOW_PRIVATE_IMAGE_URLS", raising=False)
    load_settings.cache_clear()
    yield monkeypatch
    load_settings.cache_clear()


@pytest.mark.parametrize("url", LOCAL_URLS)
def test_local_targets_are_refused_without_dns(url: str) -> None:
    assert outbound.url_problem(url) is None
    assert outbound.refused_literal(url)


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_targets_pass(url: str) -> None:
    assert outbound.url_problem(url) is None
    assert not outbound.refused_literal(url)


@pytest.mark.parametrize("url", BAD_URLS)
def test_unparsable_urls_have_a_problem(url: str) -> None:
    assert outbound.url_problem(url)


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("2852039166", "169.254.169.254"),
     ("0177.0.0.1", "127.0.0.1"), ("[::ffff:7f00:1]", "::ffff:7f00:1"), ("example.com", None)],
)  # fmt: skip
def test_literals_are_read_as_inet_aton_does(host: str, address: str | None) -> None:
    literal = outbound.literal_address(host)
    assert (str(literal) if literal else None) == address


# --------------------------------------------------------------------------- pinned connection


class _Echo(QuietHandler):
    """Answers 200 with the Host header it received."""

    def do_GET(self) -> None:
        self.reply(200, self.headers.get("Host", "").encode())


@pytest.fixture
def echo() -> Iterator[LoopbackServer]:
    server = LoopbackServer(_Echo, name="outbound-echo")
    yield server
    server.close()


class ChangingResolver:
    """Answers ``first`` on its first lookup, ``later`` ever after; counts lookups."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.first, self.later, self.calls = first, later, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.first if self.calls == 1 else self.later


def test_the_connection_goes_to_the_address_that_was_checked(
    private_allowed: pytest.MonkeyPatch, echo: LoopbackServer
) -> None:
    """A rebinding resolver (public first, then the metadata server) gets one lookup:
    the request goes to the checked address and the Host header keeps the name."""
    real_check = outbound.is_public_address
    private_allowed.setattr(outbound, "is_public_address", lambda a: str(a) == "127.0.0.1" or real_check(a))
    resolver = ChangingResolver(["127.0.0.1"], ["169.254.169.254"])
    with outbound.client(5, resolver) as client:
        response = client.get(f"http://hooks.example:{echo.port}/x")
        assert (response.status_code, response.text) == (200, f"hooks.example:{echo.port}")
        assert str(response.request.url) == f"http://hooks.example:{echo.port}/x"
        assert resolver.calls == 1
        with pytest.raises(outbound.OutboundError, match="réseau privé ou local"):
            client.get(f"http://hooks.example:{echo.port}/x")  # the next request checks again


@pytest.mark.parametrize("answer", [["8.8.8.8", "127.0.0.1"], ["::ffff:10.0.0.1"], ["169.254.169.254"]])
def test_one_private_address_refuses_the_request(private_allowed: pytest.MonkeyPatch, answer: list[str]) -> None:
    transport = outbound.PinnedTransport(lambda host, port: answer)
    with pytest.raises(outbound.OutboundError, match="réseau privé ou local") as caught:
        transport.addresses("hooks.example", 443)
    assert not caught.value.retryable


def test_unknown_hosts_are_retryable(private_allowed: pytest.MonkeyPatch) -> None:
    with outbound.client(5) as client, pytest.raises(outbound.OutboundError, match="hôte inconnu") as caught:
        client.get("http://no-such-host.invalid/x")
    assert caught.value.retryable


def test_a_dead_address_falls_back_to_the_next_checked_one(
    private_allowed: pytest.MonkeyPatch, echo: LoopbackServer
) -> None:
    private_allowed.setenv("ALLOW_PRIVATE_IMAGE_URLS", "true")
    load_settings.cache_clear()
    with outbound.client(5, lambda host, port: ["::1", "127.0.0.1"]) as client:  # nothing on ::1
        assert client.get(f"http://hooks.example:{echo.port}/").text == f"hooks.example:{echo.port}"


def test_tls_keeps_the_name_for_sni_and_the_certificate(tmp_path: Path) -> None:
    """Pinned to 127.0.0.1, TLS still sends the name as SNI and checks the certificate against it."""
    key_pem, cert_pem = _key_and_cert("hooks.example")
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc]

    class TlsEcho(_Echo):
        def setup(self) -> None:
            self.request = server_tls.wrap_socket(self.request, server_side=True)
            super().setup()

    server = LoopbackServer(TlsEcho, name="outbound-tls")
    client_tls = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    transport = outbound.PinnedTransport(lambda host, port: ["127.0.0.1"], allow_private=True, verify=client_tls)
    try:
        with httpx2.Client(transport=transport, timeout=5) as client:
            assert client.get(f"https://hooks.example:{server.port}/").text == f"hooks.example:{server.port}"
            with pytest.raises(httpx2.ConnectError, match="certificate"):  # the name, not the address, is checked
                client.get(f"https://other.example:{server.port}/")
    finally:
        server.close()
    assert names[0] == "hooks.example"
