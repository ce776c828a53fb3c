"""``/docs``: Swagger UI of ``/openapi.json``, every file from the function's own origin."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from imagegen.api import router
from tests.conftest import API_BASE_URL

OPERATION_IDS = {
    "createJob", "getJobStatus", "getJobResult", "cancelJob", "listJobs", "streamJobEvents",
    "getImage", "getOpenApiDocument", "getDocsPage", "getHomePage", "getPlaygroundPage",
    "getHealth",
}


def test_docs_page_and_its_assets_come_from_the_api_itself(api: Any) -> None:
    page = requests.get(f"{API_BASE_URL}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(references) == 4, references
    for reference in references:
        assert not urlsplit(reference).scheme and not reference.startswith("/"), reference
        url = urljoin(page.url, reference)
        assert urlsplit(url).netloc == urlsplit(API_BASE_URL).netloc
        asset = requests.get(url, timeout=10)
        assert asset.status_code == 200, url
        assert "max-age" in asset.headers["Cache-Control"]
        assert not re.search(rb"url\(['\"]?(https?:)?//", asset.content), url  # no stylesheet fetches elsewhere
    init = requests.get(f"{API_BASE_URL}/docs/init.js", timeout=10).text
    assert "openapi.json" in init and "validatorUrl: null" in init
    bundle = requests.get(f"{API_BASE_URL}/docs/swagger-ui-bundle.js", timeout=10)
    assert bundle.headers["Content-Type"].startswith("text/javascript") and len(bundle.content) > 500_000
    for name in ("index.html", "swagger-initializer.js", "..%2Fmain.py", "oauth2-redirect.html"):
        missing = requests.get(f"{API_BASE_URL}/docs/{name}", timeout=10)
        assert (missing.status_code, missing.json()["error"]) == (404, "Route introuvable"), name
    slash = requests.get(f"{API_BASE_URL}/docs/", allow_redirects=False, timeout=10)
    assert (slash.status_code, slash.headers["Location"]) == (308, "../docs")


def test_openapi_names_every_operation_for_generated_clients(api: Any) -> None:
    document = api.get("/openapi.json").json()
    assert document["info"]["title"].isascii()
    operations = {
        operation["operationId"]: (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) >= OPERATION_IDS
    documented = {(path, method.upper()) for path, methods in document["paths"].items() for method in methods}
    for rule in router._ROUTES.iter_rules():
        if rule.endpoint not in {"docs_asset", "playground_asset"}:  # the pages' own static files
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, (path, method)
    path, _, stream = operations["streamJobEvents"]
    assert path == "/api/images/events/{job_id}"
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {p["name"] for p in stream["parameters"]} == {"job_id", "Last-Event-ID", "last_event_id", "api_key"}
    _, _, status = operations["getJobStatus"]
    assert {p["name"] for p in status["parameters"]} == {"job_id", "wait", "since", "If-None-Match"}
    assert "ETag" in status["responses"]["200"]["headers"]
    assert "JobEvent" in document["components"]["schemas"]
