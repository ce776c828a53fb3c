"""Gemini options on the running stack, with the real google-genai SDK against the stand-in:
model choice, seeds, typed failures, allow_partial, fallbacks and deadlines."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
import requests

from emulator.stack import Stack
from tests.integration.helpers import create_job, deliver_task, queued_job, stored_objects
from tests.integration.test_sweeper import sweep
from tests.loopback import LoopbackServer, QuietHandler, Receiver


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


def _image_hashes(api: Any, job_id: str) -> list[tuple[int, str]]:
    """(seed, sha256 of the stored bytes) of each image of a completed job."""
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["status"] == "COMPLETED", result
    return [
        (image["seed"], hashlib.sha256(requests.get(image["url"], timeout=10).content).hexdigest())
        for image in result["images"]
    ]


def test_same_seed_gives_identical_bytes_and_each_image_its_own_seed(api: Any, standin: Any) -> None:
    first = create_job(api, seed=42, num_images=2)
    assert api.wait_for_job(first)["status"] == "COMPLETED"
    again = create_job(api, seed=42, num_images=2)
    assert api.wait_for_job(again)["status"] == "COMPLETED"
    shifted = create_job(api, seed=43)  # image 2 of seed 42 is image 1 of seed 43
    assert api.wait_for_job(shifted)["status"] == "COMPLETED"

    hashes = _image_hashes(api, first)
    assert [seed for seed, _ in hashes] == [42, 43]
    assert hashes[0][1] != hashes[1][1]  # two different pictures, no longer two copies
    assert _image_hashes(api, again) == hashes
    assert _image_hashes(api, shifted) == [hashes[1]]
    assert sorted(call["seed"] for call in standin.calls()) == [42, 42, 43, 43, 43]


def test_without_a_seed_each_image_gets_a_recorded_random_seed(api: Any, standin: Any) -> None:
    job_id = create_job(api, num_images=2)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    hashes = _image_hashes(api, job_id)
    seeds = [seed for seed, _ in hashes]
    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in seeds)
    assert seeds[0] != seeds[1] and hashes[0][1] != hashes[1][1]
    assert sorted(call["seed"] for call in standin.calls()) == sorted(seeds)
    # The recorded seed reproduces its image.
    replay = create_job(api, seed=seeds[1])
    assert api.wait_for_job(replay)["status"] == "COMPLETED"
    assert _image_hashes(api, replay) == [hashes[1]]


def test_seed_out_of_range_is_a_french_400(api: Any) -> None:
    for bad in (-1, 2**31, "7", 1.5, True):
        response = api.post("/api/images/generate", json={"prompt": "p", "seed": bad})
        assert response.status_code == 400, bad
        assert response.json()["details"] == [
            {"field": "seed", "message": "seed doit être un entier entre 0 et 2147483647"}
        ]


# --------------------------------------------------------------------------- typed failures



def _failed_with_webhook(api: Any, receiver: Receiver, prompt: str, **fields: Any) -> tuple[dict, dict]:
    """Run a job to FAILED; its result and its failed webhook's payload."""
    url = receiver.url()
    job_id = create_job(api, prompt=prompt, webhook_url=url, **fields)
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    result = api.get(f"/api/images/result/{job_id}").json()
    [hook] = receiver.wait(url, 1)
    return result, hook.json()


@pytest.mark.parametrize(
    ("fault", "error_code", "message_start"),
    [
        ("invalid_key", "invalid_api_key", "Clé API Google invalide ou expirée"),
        ("not_found", "model_unavailable", "Modèle Gemini non disponible"),
        ("no_image", "no_image", "Gemini n'a renvoyé aucune image (NO_IMAGE)"),
        ("safety", "content_blocked", "Prompt bloqué par les filtres de sécurité de Gemini (SAFETY)"),
        ("image_safety", "content_blocked", "Image bloquée par les filtres de sécurité de Gemini (IMAGE_SAFETY)"),
        ("503", "upstream_unavailable", "Service Gemini indisponible"),
    ],
)
def test_each_failure_has_its_error_code_in_the_result_and_the_webhook(
    api: Any, standin: Any, receiver: Receiver, fault: str, error_code: str, message_start: str
) -> None:
    standin.configure(faults=[{"kind": fault}])
    result, payload = _failed_with_webhook(api, receiver, f"Un chat ({fault})")
    assert result["errors"][0].startswith(message_start)  # the seed's French message, kept
    assert (result["error_code"], payload["error_code"]) == (error_code, error_code)
    assert payload["error_message"] == result["errors"][0]
    status = api.get(f"/api/images/status/{result['job_id']}").json()
    assert status["error_code"] == error_code
    if fault == "safety":
        expected = {
            "block_reason": "SAFETY",
            "ratings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            ],
        }
        assert result["safety"] == expected
        assert payload["safety"] == expected
    elif fault == "image_safety":
        assert result["safety"] == payload["safety"] == {"finish_reason": "IMAGE_SAFETY", "ratings": []}
    else:
        assert "safety" not in result


class _NotAnImage(QuietHandler):
    def do_GET(self) -> None:
        if self.path == "/text.png":
            self.reply(200, b"this is not a picture", {"Content-Type": "image/png"})
        else:
            self.reply(404)


def test_input_image_errors_are_typed(api: Any, standin: Any, receiver: Receiver) -> None:
    with LoopbackServer(_NotAnImage) as images:
        unreachable, _ = _failed_with_webhook(
            api, receiver, "Un chat", input_image_url=f"{images.base_url}/missing.png"
        )
        invalid, payload = _failed_with_webhook(
            api, receiver, "Un chat", input_image_url=f"{images.base_url}/text.png"
        )
    assert unreachable["error_code"] == "input_image_unreachable"
    assert (invalid["error_code"], payload["error_code"]) == ("input_image_invalid", "input_image_invalid")
    assert standin.calls() == []  # checked before any model call


def test_cancelled_job_has_the_cancelled_code(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1500)
    job_id = create_job(api, num_images=2)
    assert api.post(f"/api/images/cancel/{job_id}").status_code == 200
    result = api.get(f"/api/images/result/{job_id}").json()
    assert (result["status"], result["error_code"]) == ("CANCELLED", "cancelled")


# --------------------------------------------------------------------------- allow_partial


def test_a_blocked_image_fails_the_job_and_keeps_no_image_by_default(api: Any, standin: Any) -> None:
    standin.configure(faults=[{"kind": "image_safety", "match": "Un phare bloqué", "times": 1}])
    job_id = create_job(api, prompt="Un phare bloqué", num_images=3)
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert (result["error_code"], result["safety"]["finish_reason"]) == ("content_blocked", "IMAGE_SAFETY")
    assert "images" not in result
    assert stored_objects(job_id) == []  # the two images that were made are deleted
    calls = [call for call in standin.calls() if call["prompt"].startswith("Un phare bloqué")]
    assert [call["fault"] for call in calls].count("image_safety") == 1 and len(calls) == 3


def test_allow_partial_completes_with_the_images_it_has(api: Any, standin: Any, receiver: Receiver) -> None:
    standin.configure(faults=[{"kind": "safety", "times": 1}])
    url = receiver.url()
    job_id = create_job(api, num_images=3, seed=7, allow_partial=True, webhook_url=url)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    result = api.get(f"/api/images/result/{job_id}").json()
    [missing] = result["missing_images"]
    assert (missing["error_code"], missing["safety"]["block_reason"]) == ("content_blocked", "SAFETY")
    assert missing["message"] == "Prompt bloqué par les filtres de sécurité de Gemini (SAFETY)"
    kept = [image["seed"] for image in result["images"]]
    assert sorted(kept + [7 + missing["index"] - 1]) == [7, 8, 9]
    assert result["message"] == "2 image(s) générée(s) avec succès"
    assert len([name for name in stored_objects(job_id) if "_thumb" not in name]) == 2
    [hook] = receiver.wait(url, 1)
    assert hook.json()["data"]["missing_images"] == result["missing_images"]


def test_allow_partial_with_every_image_blocked_fails(api: Any, standin: Any) -> None:
    standin.configure(faults=[{"kind": "no_image"}])
    job_id = create_job(api, num_images=2, allow_partial=True)
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    assert api.get(f"/api/images/result/{job_id}").json()["error_code"] == "no_image"


# --------------------------------------------------------------------------- fallbacks


def test_a_shut_down_model_falls_back_along_the_chain(api: Any, standin: Any) -> None:
    standin.configure(shut_down_models=["gemini-3.1-flash-image"])  # the stack's default model
    job_id = create_job(api, num_images=2)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    metadata = api.get(f"/api/images/result/{job_id}").json()["metadata"]
    assert metadata["model_name"] == "gemini-3-pro-image"
    assert metadata["fallbacks"] == {"unavailable": ["gemini-3.1-flash-image"], "used": "gemini-3-pro-image"}
    # The retired model answers before reading the request (prompt None), as Google's does.
    calls = sorted((call["model"], call["status"]) for call in standin.calls())
    assert calls == [("gemini-3-pro-image", 200)] * 2 + [("gemini-3.1-flash-image", 404)] * 2


def test_every_model_of_the_chain_shut_down_is_model_unavailable(api: Any, standin: Any, receiver: Receiver) -> None:
    standin.configure(shut_down_models=["gemini-3.1-flash-image", "gemini-3-pro-image"])
    result, payload = _failed_with_webhook(api, receiver, "Un chat sans modèle")
    assert result["errors"] == ["Modèle Gemini non disponible"]
    assert (result["error_code"], payload["error_code"]) == ("model_unavailable", "model_unavailable")


# --------------------------------------------------------------------------- deadlines


def test_a_deadline_that_expires_mid_job_fails_it_billed(api: Any, standin: Any, receiver: Receiver) -> None:
    standin.configure(latency_ms=6000)  # longer than the job may take
    url = receiver.url()
    started = time.monotonic()
    job_id = create_job(api, prompt="Un phare trop lent", num_images=2, timeout_seconds=2, webhook_url=url)
    assert api.wait_for_job(job_id, timeout=30)["status"] == "FAILED"
    assert time.monotonic() - started < 5.5  # ended at the deadline, not after the calls
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["error_code"] == "deadline_exceeded"
    assert result["errors"] == ["Délai dépassé : la tâche n'était pas terminée après 2 s (timeout_seconds)"]
    assert result["billed"] is True  # the model calls had started
    [hook] = receiver.wait(url, 1)
    assert hook.json()["error_code"] == "deadline_exceeded"
    # The calls still running end (one attempt each: no retry past the deadline), storing nothing.
    deadline = time.monotonic() + 15
    while len([c for c in standin.calls() if c["prompt"].startswith("Un phare trop lent")]) < 2:
        assert time.monotonic() < deadline, standin.calls()
        time.sleep(0.2)
    time.sleep(1)
    assert len([c for c in standin.calls() if c["prompt"].startswith("Un phare trop lent")]) == 2
    assert stored_objects(job_id) == []


def test_a_job_past_its_deadline_before_it_ran_is_failed_unbilled(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    job = queued_job(jobs, prompt="Une tour en file", timeout_seconds=1)
    time.sleep(1.2)
    # The worker delivery that comes too late fails it without a model call.
    assert deliver_task(stack, job["job_id"]).json()["outcome"] == "failed"
    late = api.get(f"/api/images/result/{job['job_id']}").json()
    assert (late["error_code"], late["billed"]) == ("deadline_exceeded", False)
    # One that never gets a delivery at all: the sweeper ends it.
    stuck = queued_job(jobs, prompt="Une tour oubliée", timeout_seconds=1)
    time.sleep(1.2)
    report = sweep(stack)
    assert stuck["job_id"] in report["failed"]
    swept = api.get(f"/api/images/result/{stuck['job_id']}").json()
    assert (swept["status"], swept["error_code"], swept["billed"]) == ("FAILED", "deadline_exceeded", False)
    assert not [call for call in standin.calls() if (call["prompt"] or "").startswith("Une tour")]


def test_timeout_seconds_out_of_range_is_a_french_400(api: Any) -> None:
    for bad in (0, 901, "60", 2.5):
        response = api.post("/api/images/generate", json={"prompt": "p", "timeout_seconds": bad})
        assert response.status_code == 400, bad
        assert response.json()["details"] == [
            {"field": "timeout_seconds", "message": "timeout_seconds doit être un entier entre 1 et 900"}
        ]
