"""The playground's static serving: redirect, types, caching, Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator

import flask
import pytest

from imagegen.api import router, web
from imagegen.config import load_settings

app = flask.Flask(__name__)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def get(path: str, **headers: str) -> flask.Response:
    with app.test_request_context(path, headers=headers):
        return router.handle(flask.request)


@pytest.mark.parametrize(
    ("path", "status", "location"), [("/", 302, "playground"), ("/playground/", 308, "../playground")]
)
def test_redirects_to_the_playground_are_relative(path: str, status: int, location: str) -> None:
    response = get(path)
    assert (response.status_code, response.headers["Location"]) == (status, location)


@pytest.mark.parametrize(("name", "content_type"), [("playground.css", "text/css"), ("favicon.svg", "image/svg+xml")])
def test_assets_have_their_type_and_are_immutable_only_under_their_hash(name: str, content_type: str) -> None:
    stamped = get(f"/playground/{name}?v={web._version(name)}")
    assert stamped.status_code == 200
    assert stamped.mimetype == content_type
    assert stamped.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert stamped.headers["X-Content-Type-Options"] == "nosniff"
    plain = get(f"/playground/{name}")
    assert plain.headers["Cache-Control"] == "no-cache"
    again = get(f"/playground/{name}", **{"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["playground.html", "web.py", "..%2Fweb.py", "nothing.js"])
def test_only_listed_assets_are_served(name: str) -> None:
    assert get(f"/playground/{name}").status_code == 404


@pytest.mark.parametrize(
    ("env", "image_origin"),
    [
        ({"PUBLIC_BASE_URL": "https://api.example.com/base"}, "https://api.example.com"),
        ({"IMAGE_URL_MODE": "signed"}, "https://storage.googleapis.com"),
        ({"IMAGE_URL_MODE": "public", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9012"}, "http://127.0.0.1:9012"),
    ],
)
def test_the_policy_allows_this_origin_and_the_image_origin_only(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], image_origin: str
) -> None:
    for name in ("PUBLIC_BASE_URL", "IMAGE_URL_MODE", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    policy = dict(
        directive.split(" ", 1) for directive in get("/playground/playground.css").headers["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == policy["script-src"] == policy["connect-src"] == "'self'"
    assert policy["img-src"] == f"'self' {image_origin}"
    assert policy["frame-ancestors"] == policy["object-src"] == "'none'"


def test_the_page_links_only_its_own_assets() -> None:
    html = web._read(web.PAGE).decode()
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert {"{{playground.css}}", "{{playground.js}}", "{{favicon.svg}}"} <= set(links)
    assert all(link.startswith("{{") or link == "playground" for link in links), links
