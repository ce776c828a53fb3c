"""``/docs``: Swagger UI on ``/openapi.json``, served by the function itself (no CDN).

The Swagger UI files come from the pinned PyPI package ``swagger-ui-bundle-v2``
(its ``swagger_ui_bundle.swagger_ui_path`` directory), so they ship in the
function's source like any dependency. Every URL in the page is relative
(``docs/...``, ``openapi.json``), so it also works under a path prefix such as
``https://REGION-PROJECT.cloudfunctions.net/api/docs``; a Content-Security-Policy
keeps every request on the page's own origin.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path

import flask

from imagegen.http import error_response

# Only what the page uses: nothing else of the package's directory is served.
_VENDOR_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
_INIT_FILE = "init.js"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Image Generation API - Reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css?v={version}">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png?v={version}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js?v={version}"></script>
<script src="docs/init.js?v={version}"></script>
</body>
</html>
"""
# validatorUrl: null, or Swagger UI loads a badge from validator.swagger.io.
_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    displayOperationId: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


@functools.cache
def _vendor() -> tuple[Path, str]:
    """The package's Swagger UI directory and its version (``.../swagger-ui-5.31.0``)."""
    from swagger_ui_bundle import swagger_ui_path

    path = Path(str(swagger_ui_path))
    return path, path.name.removeprefix("swagger-ui-")


def _headers(cache: str) -> dict[str, str]:
    return {
        "Cache-Control": cache,
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
    }


def page(request: flask.Request) -> flask.Response:
    if request.path.endswith("/"):  # the page's relative URLs need /docs, not /docs/
        return flask.Response(status=308, headers={"Location": "../docs"})
    _, version = _vendor()
    return flask.Response(
        _PAGE.format(version=version),
        content_type="text/html; charset=utf-8",
        headers=_headers("no-cache"),
    )


def asset(request: flask.Request, name: str) -> flask.Response:
    """One of the page's files; they change only with the package version (in their URLs)."""
    cache = "public, max-age=86400"
    if name == _INIT_FILE:
        return flask.Response(
            _INIT, content_type="text/javascript; charset=utf-8", headers=_headers(cache)
        )
    if name not in _VENDOR_FILES:
        return error_response(404, "Route introuvable")
    directory, _ = _vendor()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return flask.Response(
        (directory / name).read_bytes(), content_type=content_type, headers=_headers(cache)
    )
