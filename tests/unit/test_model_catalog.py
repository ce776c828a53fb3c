"""Model choice: the allow-list with its aliases, the fallback chain, per-model limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from imagegen.config import load_settings
from imagegen.generation import model_catalog
from imagegen.models import GenerateRequest, validation_messages


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GEMINI_MODEL", "gemini-3.1-flash-image")
    monkeypatch.setenv("GEMINI_MODELS", "flash=gemini-3.1-flash-image, pro=gemini-3-pro-image,gemini-2.5-flash-image")
    monkeypatch.setenv("GEMINI_MODEL_FALLBACKS", "pro, gemini-2.5-flash-image")
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def test_aliases_and_names_resolve_to_the_exact_model(settings: None) -> None:
    resolve = model_catalog.resolve
    assert resolve("pro", load_settings()) == "gemini-3-pro-image"
    assert resolve("gemini-3-pro-image", load_settings()) == "gemini-3-pro-image"
    assert resolve("gemini-2.5-flash-image", load_settings()) == "gemini-2.5-flash-image"
    assert resolve(None, load_settings()) == "gemini-3.1-flash-image"
    assert resolve("imagen-4", load_settings()) is None


def test_request_stores_the_exact_model_and_refuses_others_in_french(settings: None) -> None:
    assert GenerateRequest.model_validate({"prompt": "p", "model": "pro"}).model == "gemini-3-pro-image"
    for bad in ("imagen-4.0-generate-001", "", 7, ["pro"]):
        with pytest.raises(ValidationError) as caught:
            GenerateRequest.model_validate({"prompt": "p", "model": bad})
        [detail] = validation_messages(caught.value)
        assert detail == {
            "field": "model",
            "message": "model doit être l'un des modèles autorisés : gemini-3.1-flash-image, flash, "
            "pro, gemini-3-pro-image, gemini-2.5-flash-image",
        }


def test_fallbacks_skip_the_model_that_failed(settings: None) -> None:
    assert model_catalog.fallbacks("gemini-3.1-flash-image", load_settings()) == [
        "gemini-3-pro-image",
        "gemini-2.5-flash-image",
    ]
    assert model_catalog.fallbacks("gemini-3-pro-image", load_settings()) == ["gemini-2.5-flash-image"]


def test_limits_per_model() -> None:
    pro = model_catalog.spec("gemini-3-pro-image")
    assert (pro.max_reference_images, pro.offers_4k) == (14, True)
    assert model_catalog.spec("gemini-3-pro-image-preview") == pro
    assert model_catalog.spec("gemini-2.5-flash-image").offers_4k is False
    unknown = model_catalog.spec("gemini-9-image")
    assert (unknown.name, unknown.offers_4k) == ("gemini-9-image", False)
