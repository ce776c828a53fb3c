"""Requests to URLs that callers choose (``input_image_url``, ``webhook_url``), made safe.

One set of rules, applied twice:

* at job creation, without DNS (``url_problem``, ``refused_literal``): the URL
  must parse (http(s), a valid host, a port in 1-65535) and its host must not
  be a name or a literal address that can only be local. Literals are parsed
  the way ``inet_aton`` (and so glibc's resolver) reads them: ``127.1``,
  ``0x7f.1``, ``0177.0.0.1`` and ``2852039166`` are all addresses;
* at request time (``client``): the transport resolves the host once, refuses
  the request unless every address is public, and connects to a checked
  address. The URL's host is replaced by that address while the ``Host``
  header and TLS (SNI and certificate check) keep the name, so nothing
  resolves the name a second time: DNS rebinding cannot swap the address
  between the check and the connection.

Public means globally routable unicast: loopback, private, shared (CGNAT),
link-local (the metadata server 169.254.169.254), ULA, multicast, reserved
and unspecified ranges are refused, IPv4 embedded in IPv6 (mapped,
compatible, 6to4, Teredo, NAT64) judged by its IPv4 address.
``ALLOW_PRIVATE_IMAGE_URLS`` (tests only) lifts the address rules, not the
syntax ones nor the pinning.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx2

from imagegen.config import load_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> addresses``: one lookup; the default is ``system_resolver``."""

PRIVATE_TARGET = "l'adresse pointe vers un réseau privé ou local"
_LOCAL_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal"})
# Names under these suffixes only ever resolve inside a private network.
_LOCAL_SUFFIXES = (".localhost", ".internal")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundError(Exception):
    """The request is refused before anything is sent; the message is French.

    ``retryable`` is true only when asking again later may work (a name that
    does not resolve today).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested (scheme, host, port), or None when it parses."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a bad port (":99999", ":abc") or bracketed host
        return "port ou hôte invalide"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return "seules les URL http(s) sont acceptées"
    if port == 0:
        return "port ou hôte invalide"
    host = parts.hostname or ""
    bracketed = "[" in parts.netloc
    if not host or not (_valid_ipv6(host) if bracketed else _valid_name(host)):
        return "port ou hôte invalide"
    return None


def _valid_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host.split("%")[0])
    except ValueError:  # IPvFuture ("[v1.x]") and the like: nothing can connect to them
        return False
    return True


def _valid_name(host: str) -> bool:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.removesuffix(".").split(".")
    return len(ascii_host) <= 253 and all(_LABEL.match(label) for label in labels)


def literal_address(host: str) -> Address | None:
    """The address ``host`` denotes without DNS (every ``inet_aton`` form), else None."""
    host = host.strip("[]").rstrip(".")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_public_address(address: str | Address) -> bool:
    """True only for globally routable unicast addresses (IPv6 scope ids ignored)."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, IPv4-compatible (::a.b.c.d)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refused_host(host: str) -> bool:
    """True for a host that can only be local: a local name or a non-public literal."""
    name = host.lower().strip("[]").rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return True
    literal = literal_address(name)
    return literal is not None and not is_public_address(literal)


def refused_literal(url: str) -> bool:
    """Creation-time check (no DNS): the URL's host is a local name or private literal."""
    return refused_host(urlsplit(url).hostname or "")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host``, in its order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedTransport(httpx2.BaseTransport):
    """Resolve once, check every address, connect to a checked one (see the module doc)."""

    def __init__(
        self,
        resolver: Resolver = system_resolver,
        *,
        allow_private: bool = False,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = httpx2.HTTPTransport(verify=verify, trust_env=False)

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to; raises ``OutboundError``."""
        if not self._allow_private and refused_host(host):
            raise OutboundError(PRIVATE_TARGET)
        try:
            found = self._resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"hôte inconnu ({host[:100]})", retryable=True) from exc
        if not found:
            raise OutboundError(f"hôte inconnu ({host[:100]})", retryable=True)
        if not self._allow_private and not all(is_public_address(a) for a in found):
            raise OutboundError(PRIVATE_TARGET)
        return found

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        problem = url_problem(str(request.url))
        if problem:
            raise OutboundError(f"URL invalide : {problem}")
        host = request.url.raw_host.decode("ascii")
        addresses = self.addresses(host, request.url.port or _DEFAULT_PORTS[request.url.scheme])
        for address in addresses[:-1]:
            try:
                return self._send(request, host, address)
            except httpx2.ConnectError:  # nothing was sent: the next address may answer
                continue
        return self._send(request, host, addresses[-1])

    def _send(self, request: httpx2.Request, host: str, address: str) -> httpx2.Response:
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
        pinned = httpx2.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # Host: the name, as the client set it
            stream=request.stream,
            extensions=extensions,
        )
        return self._inner.handle_request(pinned)

    def close(self) -> None:
        self._inner.close()


def client(timeout: httpx2.Timeout | float, resolver: Resolver = system_resolver) -> httpx2.Client:
    """An ``httpx2.Client`` that requests only public addresses, pinned; no redirects followed."""
    transport = PinnedTransport(resolver, allow_private=load_settings().allow_private_image_urls)
    return httpx2.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
