"""Request validation: every field of the seed's table, with its French message."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from imagegen.models import (
    FORMATS,
    QUALITIES,
    SIZES,
    STYLES,
    GenerateRequest,
    validation_messages,
)
from tests.url_forms import BAD_URLS


def messages(body: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        GenerateRequest.model_validate(body)
    return {d["field"]: d["message"] for d in validation_messages(caught.value)}


def test_defaults_are_the_seeds() -> None:
    request = GenerateRequest.model_validate({"prompt": "Un chat"}).model_dump()
    seed_fields = {
        "prompt": "Un chat",
        "input_image_url": None,
        "num_images": 1,
        "size": "1024x1024",
        "format": "PNG",
        "style": "photorealistic",
        "quality": "high",
        "webhook_url": None,
        "webhook_events": None,
    }
    assert {name: request[name] for name in seed_fields} == seed_fields
    # Fields added beside the seed's change nothing unless sent.
    assert {name: value for name, value in request.items() if name not in seed_fields and value} == {}


@pytest.mark.parametrize(
    ("size", "fmt", "style", "quality"), list(itertools.product(SIZES, FORMATS, STYLES, QUALITIES))
)
def test_every_documented_value_is_accepted(size: str, fmt: str, style: str, quality: str) -> None:
    request = GenerateRequest.model_validate(
        {"prompt": "p", "size": size, "format": fmt, "style": style, "quality": quality}
    )
    assert (request.size, request.format, request.style, request.quality) == (size, fmt, style, quality)


@pytest.mark.parametrize("prompt", [None, "", "   \n\t", 42, ["a"], {"a": 1}])
def test_prompt_required(prompt: object) -> None:
    body = {} if prompt is None else {"prompt": prompt}
    assert messages(body) == {"prompt": "Prompt requis"}


def test_prompt_is_bounded_and_stripped() -> None:
    assert GenerateRequest.model_validate({"prompt": "  chat  "}).prompt == "chat"
    assert GenerateRequest.model_validate({"prompt": "é" * 4000}).prompt == "é" * 4000
    assert messages({"prompt": "x" * 4001}) == {
        "prompt": "Le prompt ne doit pas dépasser 4000 caractères"
    }


def test_prompt_control_characters_refused_but_unicode_kept() -> None:
    assert messages({"prompt": "chat\x00"})["prompt"].startswith("Le prompt contient")
    assert messages({"prompt": "chat\x1b[31m"})["prompt"].startswith("Le prompt contient")
    text = "Chat 🐱 dans l'espace — 宇宙の猫\nligne 2\ttab"
    assert GenerateRequest.model_validate({"prompt": text}).prompt == text


@pytest.mark.parametrize("value", [0, 5, -1, 2.5, "2", True, None, [1]])
def test_num_images_between_1_and_4(value: object) -> None:
    assert messages({"prompt": "p", "num_images": value}) == {
        "num_images": "num_images doit être entre 1 et 4"
    }


@pytest.mark.parametrize("value", [1, 2, 3, 4])
def test_num_images_valid(value: int) -> None:
    assert GenerateRequest.model_validate({"prompt": "p", "num_images": value}).num_images == value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", "2048x2048", "size doit être l'une des valeurs : 512x512, 1024x1024, 1792x1024"),
        ("size", 1024, "size doit être l'une des valeurs : 512x512, 1024x1024, 1792x1024"),
        ("format", "GIF", "format doit être l'une des valeurs : PNG, JPEG, WEBP"),
        ("format", "png", "format doit être l'une des valeurs : PNG, JPEG, WEBP"),
        ("style", "anime", "style doit être l'une des valeurs : photorealistic, artistic, illustration, 3d-render"),
        ("quality", "max", "quality doit être l'une des valeurs : standard, high, ultra"),
    ],
)
def test_enums(field: str, value: object, message: str) -> None:
    assert messages({"prompt": "p", field: value}) == {field: message}


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "example.com/a.png", "http://", "https://exa mple.com/a.png",
     "javascript:alert(1)", "http://user@evil.com/", 7, "https://example.com/" + "a" * 2100],
)
def test_input_image_url_must_be_http(url: object) -> None:
    assert messages({"prompt": "p", "input_image_url": url}) == {
        "input_image_url": "input_image_url doit être une URL http(s) valide"
    }


def test_input_image_url_accepts_http_and_https() -> None:
    for url in ("https://example.com/photo.jpg", "http://127.0.0.1:8080/photo.jpg?x=1"):
        assert GenerateRequest.model_validate({"prompt": "p", "input_image_url": url}).input_image_url == url


def test_one_message_per_bad_field_and_unknown_fields_refused() -> None:
    found = messages({"prompt": "", "num_images": 9, "format": "BMP", "colour": "red"})
    assert found == {
        "prompt": "Prompt requis",
        "num_images": "num_images doit être entre 1 et 4",
        "format": "format doit être l'une des valeurs : PNG, JPEG, WEBP",
        "colour": "Champ inconnu : colour",
    }


def test_webhook_fields() -> None:
    request = GenerateRequest.model_validate(
        {"prompt": "p", "webhook_url": "https://hooks.example.com/x", "webhook_events": ["progress", "completed", "progress"]}
    )
    assert request.webhook_events == ["progress", "completed"]
    assert "webhook_url" not in request.job_fields()
    assert messages({"prompt": "p", "webhook_url": "mailto:a@b.c"}) == {
        "webhook_url": "webhook_url doit être une URL http(s) valide"
    }
    assert "webhook_events" in messages({"prompt": "p", "webhook_events": ["done"]})
    assert "webhook_events" in messages({"prompt": "p", "webhook_events": []})


@pytest.mark.parametrize("field", ["input_image_url", "webhook_url"])
@pytest.mark.parametrize("url", BAD_URLS)
def test_urls_that_cannot_be_requested_are_refused(field: str, url: str) -> None:
    assert messages({"prompt": "x", field: url}) == {field: f"{field} doit être une URL http(s) valide"}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read from this test's environment (cleared before and after)."""
    from imagegen.config import load_settings

    load_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    load_settings.cache_clear()


def test_reference_images_are_limited_by_the_chosen_model(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("GEMINI_MODELS", "flash=gemini-3.1-flash-image,old=gemini-2.5-flash-image")
    urls = [f"https://example.com/{n}.png" for n in range(3)]
    body = {"prompt": "p", "input_image_urls": urls, "model": "old"}
    assert GenerateRequest.model_validate(body).input_image_urls == urls  # 3: the model's limit
    assert messages(body | {"input_image_url": "https://example.com/first.png"}) == {
        "input_image_urls": "Au plus 3 images de référence pour gemini-2.5-flash-image (input_image_url compris), 4 reçues"
    }
    assert GenerateRequest.model_validate(body | {"model": "flash"}).model == "gemini-3.1-flash-image"


def test_gs_reference_images_come_from_allowed_buckets(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("IMAGES_BUCKET", "images-b")
    settings_env.setenv("INPUT_IMAGE_BUCKETS", "brand-assets, shared-refs")
    ok = ["gs://images-b/a.png", "gs://brand-assets/logos/x.webp", "gs://shared-refs/é.jpg"]
    assert GenerateRequest.model_validate({"prompt": "p", "input_image_urls": ok}).input_image_urls == ok
    assert messages({"prompt": "p", "input_image_urls": ["gs://other/a.png"]}) == {
        "input_image_urls": "input_image_urls[0] : bucket other non autorisé (images-b, brand-assets, shared-refs)"
    }
    for bad in ("gs://images-b/", "gs://Images-B/a.png", "gs:/images-b/a.png", 7):
        assert messages({"prompt": "p", "input_image_urls": [bad]}) == {
            "input_image_urls": "input_image_urls[0] doit être une URL http(s) ou gs:// valide"
        }


def test_vertex_reads_gs_reference_images_by_uri() -> None:
    from google.genai import types

    from imagegen.generation.gemini import SourceImage, _part

    stored = SourceImage(b"jpeg", "image/jpeg", uri="gs://b/a.png", uri_mime_type="image/png")
    assert _part(types, stored, vertex=True).file_data.file_uri == "gs://b/a.png"
    assert _part(types, stored, vertex=True).file_data.mime_type == "image/png"
    assert _part(types, stored, vertex=False).inline_data.data == b"jpeg"  # the Developer API takes bytes
    assert _part(types, SourceImage(b"x", "image/jpeg"), vertex=True).inline_data.data == b"x"
