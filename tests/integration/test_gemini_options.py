"""Gemini options on the running stack, with the real google-genai SDK against the stand-in:
model choice, seeds, typed failures, allow_partial, fallbacks and deadlines."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

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
