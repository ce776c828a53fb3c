"""Bad input always gets a clear 4xx JSON error in the seed's style, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.helpers import create_job, side_api
from tests.url_forms import BAD_URLS, LOCAL_URLS


def post_raw(api: Any, data: bytes | str, content_type: str = "application/json") -> requests.Response:
    return api.post("/api/images/generate", data=data, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"prompt": ""}, 400, "Prompt requis"),
        ({}, 400, "Prompt requis"),
        ({"prompt": "x", "num_images": 0}, 400, "num_images doit être entre 1 et 4"),
        ({"prompt": "x", "num_images": 5}, 400, "num_images doit être entre 1 et 4"),
        ({"prompt": "x", "num_images": "2"}, 400, "num_images doit être entre 1 et 4"),
        ({"prompt": "x", "size": "4096x4096"}, 400, "size doit être l'une des valeurs : 512x512, 1024x1024, 1792x1024"),
        ({"prompt": "x", "input_image_url": "file:///etc/passwd"}, 400, "input_image_url doit être une URL http(s) valide"),
        ({"prompt": "x", "webhook_url": "ftp://x"}, 400, "webhook_url doit être une URL http(s) valide"),
        ({"prompt": "x", "extra": 1}, 400, "Champ inconnu : extra"),
    ],
)
def test_field_errors(api: Any, body: dict, status: int, error: str) -> None:
    response = api.post("/api/images/generate", json=body)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error


def test_several_bad_fields_give_one_message_each(api: Any) -> None:
    response = api.post("/api/images/generate", json={"prompt": " ", "num_images": 7, "format": "BMP"})
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["details"]] == ["prompt", "num_images", "format"]


def _short_id(value: object) -> str:
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}...({len(text)} chars)"


@pytest.mark.parametrize(
    ("data", "content_type", "error"),
    [
        ("{not json", "application/json", "Corps JSON invalide"),
        ("", "application/json", "Corps JSON invalide"),
        ('["prompt"]', "application/json", "Le corps de la requête doit être un objet JSON"),
        ("null", "application/json", "Le corps de la requête doit être un objet JSON"),
        ('{"prompt": "x"}', "text/plain", "Content-Type doit être application/json"),
        ("prompt=x", "application/x-www-form-urlencoded", "Content-Type doit être application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/json", "Requête trop volumineuse (maximum 65536 octets)"),
        ("[" * 5000 + "]" * 5000, "application/json", "Corps JSON invalide"),
        (b'{"prompt": "\xff\xfe"}', "application/json", "Corps JSON invalide"),
    ],
    ids=_short_id,
)
def test_malformed_bodies(api: Any, data: Any, content_type: str, error: str) -> None:
    response = post_raw(api, data, content_type)
    assert 400 <= response.status_code < 500
    assert response.json()["error"] == error


@pytest.mark.parametrize("field", ["input_image_url", "webhook_url"])
def test_local_and_unparsable_urls_refused_at_creation(stack: Any, field: str) -> None:
    # The test stack allows loopback images; an API without that setting refuses them.
    with side_api(stack.env | {"ALLOW_PRIVATE_IMAGE_URLS": "false"}) as base:
        for url in LOCAL_URLS + BAD_URLS:
            response = requests.post(f"{base}/api/images/generate", json={"prompt": "x", field: url}, timeout=10)
            assert response.status_code == 400, url
            assert [d["field"] for d in response.json()["details"]] == [field], url


@pytest.mark.parametrize("field", ["input_image_url", "webhook_url"])
def test_unparsable_urls_refused_even_when_private_ones_are_allowed(api: Any, field: str) -> None:
    for url in BAD_URLS:
        response = api.post("/api/images/generate", json={"prompt": "x", field: url})
        assert response.status_code == 400, url
        assert response.json()["error"] == f"{field} doit être une URL http(s) valide", url


def test_no_model_configured_is_the_seeds_500(stack: Any) -> None:
    env = {k: v for k, v in stack.env.items() if k != "GEMINI_STANDIN_URL"}
    with side_api(env) as base:
        health = requests.get(f"{base}/health", timeout=10).json()
        assert health["features"]["image_generation"] is False
        assert health["gemini_backend"] == "none"
        response = requests.post(f"{base}/api/images/generate", json={"prompt": "x"}, timeout=10)
        assert response.status_code == 500
        assert response.json()["error"] == "Clé API Google non configurée"


def test_unknown_route_and_wrong_method_are_json(api: Any) -> None:
    assert api.get("/api/nothing").status_code == 404
    response = api.get("/api/images/generate")
    assert response.status_code == 405
    assert response.json()["error"] == "Méthode non autorisée"


def test_cors_preflight_for_browser_frontends(api: Any) -> None:
    response = api.options(
        "/api/images/generate",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


def test_openapi_document_matches_the_validation_model(api: Any) -> None:
    from imagegen.models import GenerateRequest

    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    schema = document["components"]["schemas"]["GenerateRequest"]
    assert set(schema["properties"]) == set(GenerateRequest.model_fields)
    assert schema["required"] == ["prompt"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["num_images"]["maximum"] == 4
    assert set(document["paths"]) >= {
        "/api/images/generate", "/api/images/status/{job_id}", "/api/images/result/{job_id}", "/health"
    }
    # Jobs created through the documented route actually work.
    assert create_job(api).startswith("img_")
