"""Gemini faults from the stand-in, and Cloud Tasks' at-least-once delivery."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.helpers import WORKER, create_job, deliver_task, stored_images, stored_objects

FAULT_CODES = {
    "invalid_key": "invalid_api_key",
    "not_found": "model_unavailable",
    "safety": "content_blocked",
    "image_safety": "content_blocked",
    "no_image": "no_image",
}


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("invalid_key", "Clé API Google invalide ou expirée"),
        ("not_found", "Modèle Gemini non disponible"),
        ("safety", "Prompt bloqué par les filtres de sécurité de Gemini (SAFETY)"),
        ("image_safety", "Image bloquée par les filtres de sécurité de Gemini (IMAGE_SAFETY)"),
        ("no_image", "Gemini n'a renvoyé aucune image (NO_IMAGE)"),
    ],
)
def test_model_faults_fail_the_job_with_a_clear_error(api: Any, standin: Any, kind: str, error: str) -> None:
    standin.configure(faults=[{"kind": kind, "match": None, "times": None}])
    job_id = create_job(api, num_images=2)
    status = api.wait_for_job(job_id)
    assert status["status"] == "FAILED"
    assert status["errors"] == [error]
    result = api.get(f"/api/images/result/{job_id}")
    assert result.status_code == 200
    body = result.json()
    typed = {key: body.pop(key) for key in ("error_code", "safety", "billed") if key in body}  # beside the seed's
    assert body == {
        "job_id": job_id, "status": "FAILED", "message": "Échec de la génération", "errors": [error]
    }
    assert typed["error_code"] == FAULT_CODES[kind]
    assert stored_objects(job_id) == []
    # Permanent errors are not retried: one call per image (and per fallback model), no retry storm.
    time.sleep(1)
    assert len(standin.calls()) == (4 if kind == "not_found" else 2)


def test_transient_429_then_503_are_retried_to_success(api: Any, standin: Any) -> None:
    standin.configure(faults=[{"kind": "429", "match": None, "times": 1}, {"kind": "503", "match": None, "times": 1}])
    job_id = create_job(api)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    assert [c["status"] for c in standin.calls()] == [429, 503, 200]
    assert len(stored_images(job_id)) == 1


def test_persistent_503_fails_after_the_sdk_retries(api: Any, standin: Any) -> None:
    standin.configure(faults=[{"kind": "503", "match": None, "times": None}])
    job_id = create_job(api)
    status = api.wait_for_job(job_id)
    assert status["errors"] == ["Service Gemini indisponible, réessayez plus tard"]
    assert len(standin.calls()) == 5  # GEMINI_RETRY_ATTEMPTS, first call included


def test_duplicate_delivery_of_a_finished_job_does_nothing(api: Any, standin: Any, stack: Any) -> None:
    job_id = create_job(api, num_images=2)
    api.wait_for_job(job_id)
    before = api.get(f"/api/images/result/{job_id}").json()
    response = deliver_task(stack, job_id)
    assert response.status_code == 200 and response.json()["outcome"] == "finished"
    assert len(standin.calls()) == 2
    assert api.get(f"/api/images/result/{job_id}").json() == before
    assert len(stored_images(job_id)) == 2


def test_concurrent_duplicate_deliveries_make_each_image_once(api: Any, standin: Any, stack: Any) -> None:
    standin.configure(latency_ms=1500)
    job_id = create_job(api, num_images=3)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: deliver_task(stack, job_id), range(3)))
    status = api.wait_for_job(job_id)
    assert status["status"] == "COMPLETED"
    outcomes = [a.json()["outcome"] for a in answers]
    assert all(o in ("completed", "busy", "finished") for o in outcomes), outcomes
    assert len(standin.calls()) == 3
    assert stored_images(job_id) == [f"generated_images/{job_id}/image_{n}.png" for n in (1, 2, 3)]
    assert len(api.get(f"/api/images/result/{job_id}").json()["images"]) == 3


@pytest.mark.parametrize(
    "headers", [{}, {"X-CloudTasks-TaskName": "forged"}, {"Authorization": "Bearer forged"}]
)
def test_worker_refuses_callers_other_than_the_queue(api: Any, standin: Any, headers: dict[str, str]) -> None:
    standin.configure(latency_ms=3000)
    job_id = create_job(api)
    response = requests.post(WORKER, json={"job_id": job_id}, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "Appel non autorisé"
    api.wait_for_job(job_id)
    assert len(standin.calls()) == 1
