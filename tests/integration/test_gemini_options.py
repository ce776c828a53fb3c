"""Gemini options on the running stack, with the real google-genai SDK against the stand-in:
model choice, seeds, typed failures, allow_partial, fallbacks and deadlines."""

from __future__ import annotations

from typing import Any

from tests.integration.helpers import create_job


def test_model_alias_runs_that_model_and_is_reported(api: Any, standin: Any) -> None:
    job_id = create_job(api, model="pro", quality="ultra")
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    (call,) = standin.calls()
    assert (call["model"], call["image_size"]) == ("gemini-3-pro-image", "4K")
    metadata = api.get(f"/api/images/result/{job_id}").json()["metadata"]
    assert metadata["model_name"] == "gemini-3-pro-image"
    assert metadata["version"] == "gemini-3-pro-image (local stand-in)"


def test_unknown_model_is_a_french_400_listing_the_allowed_names(api: Any) -> None:
    response = api.post("/api/images/generate", json={"prompt": "p", "model": "imagen-4.0-generate-001"})
    assert response.status_code == 400
    message = "model doit être l'un des modèles autorisés : gemini-3.1-flash-image, flash, pro, gemini-3-pro-image"
    assert response.json() == {"error": message, "details": [{"field": "model", "message": message}]}
