"""The playground page (``/playground``) and its assets, served by the api function.

Everything comes from this origin (no CDN): the HTML, the stylesheet and the
script bundled from ``clients/typescript`` by ``make web``. The page's
Content-Security-Policy allows nothing else, except images from where result
URLs point (``IMAGE_URL_MODE``). Assets are linked with a content hash
(``?v=``), so they are cached for a year; the HTML is revalidated every time.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import flask

from imagegen.config import Settings, load_settings
from imagegen.http import error_response

STATIC_DIR = Path(__file__).with_name("static")
PAGE = "playground.html"
ASSET_TYPES = {
    "playground.css": "text/css; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.js.map": "application/json; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"


def root(request: flask.Request) -> flask.Response:
    """``/``: the playground is the front page."""
    return _redirect("playground", 302)


def playground(request: flask.Request) -> flask.Response:
    """The page itself, its asset links stamped with their content hashes.

    Links are relative (``playground/...``), so the page also works under a
    path prefix; ``/playground/`` is sent to ``/playground``, where they resolve.
    """
    if request.path.endswith("/"):
        return _redirect("../playground", 308)
    try:
        html = _read(PAGE).decode()
        for name in ASSET_TYPES:
            html = html.replace(f"{{{{{name}}}}}", f"playground/{name}?v={_version(name)}")
    except FileNotFoundError:
        return error_response(503, "Playground non construit : lancez make web")
    return _static(request, html.encode(), "text/html; charset=utf-8", _REVALIDATE)


def asset(request: flask.Request, name: str) -> flask.Response:
    """``/playground/<name>``: only the files listed in ``ASSET_TYPES``."""
    if name not in ASSET_TYPES or not (STATIC_DIR / name).is_file():
        return error_response(404, "Fichier introuvable")
    cache = _IMMUTABLE if request.args.get("v") == _version(name) else _REVALIDATE
    return _static(request, _read(name), ASSET_TYPES[name], cache)


def content_security_policy(settings: Settings) -> str:
    """Only this origin, plus the origin result images are served from."""
    images = " ".join(["'self'", *_image_origins(settings)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _image_origins(settings: Settings) -> list[str]:
    if settings.image_url_mode == "api":
        base = settings.public_base_url
    else:  # public or signed object URLs
        base = settings.storage_emulator_host or "https://storage.googleapis.com"
    parts = urlsplit(base)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def _redirect(location: str, status: int) -> flask.Response:
    response = flask.Response(status=status)
    response.headers["Location"] = location  # relative: kept under a path prefix
    return response


def _static(request: flask.Request, body: bytes, content_type: str, cache: str) -> flask.Response:
    response = flask.Response(body, content_type=content_type)
    response.headers["Cache-Control"] = cache
    response.headers["Content-Security-Policy"] = content_security_policy(load_settings())
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.add_etag()
    response.make_conditional(request)  # turns it into a 304 in place when the ETag matches
    return response


@functools.cache
def _read(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


@functools.cache
def _version(name: str) -> str:
    return hashlib.sha256(_read(name)).hexdigest()[:12]
