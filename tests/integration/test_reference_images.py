"""Several reference images on the running stack: each its own part in the model request
(the stand-in's call log), http(s) and gs:// sources, the model's limit, a bad one named."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

import requests
from PIL import Image

from tests.integration.helpers import BUCKET, STORAGE, create_job


def _upload_png(colour: tuple[int, int, int]) -> str:
    """A 300x200 PNG of ``colour`` in the images bucket (storage emulator); its gs:// URI."""
    name = f"inputs/{uuid.uuid4().hex}.png"
    out = io.BytesIO()
    Image.new("RGB", (300, 200), colour).save(out, "PNG")
    response = requests.post(
        f"{STORAGE}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": name},
        data=out.getvalue(),
        headers={"Content-Type": "image/png"},
        timeout=10,
    )
    response.raise_for_status()
    return f"gs://{BUCKET}/{name}"


def test_every_reference_image_is_its_own_part(api: Any, standin: Any, image_server: Any) -> None:
    red, blue = _upload_png((220, 30, 30)), _upload_png((30, 30, 220))
    job_id = create_job(api, input_image_url=image_server.photo_url, input_image_urls=[red, blue])
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    (call,) = standin.calls()
    parts = call["input_images"]
    assert len(parts) == 3 and len({part["sha256"] for part in parts}) == 3
    # The first part is input_image_url's photo (as prepared: a JPEG of the same size).
    assert call["has_input_image"] is True
    assert api.get(f"/api/images/result/{job_id}").json()["metadata"]["usage"]["input_tokens"] > 0


def test_one_over_the_models_limit_is_a_400_naming_it(api: Any, image_server: Any) -> None:
    urls = [f"{image_server.photo_url}?n={n}" for n in range(14)]
    response = api.post(
        "/api/images/generate",
        json={"prompt": "p", "input_image_url": image_server.photo_url, "input_image_urls": urls, "model": "pro"},
    )
    message = "Au plus 14 images de référence pour gemini-3-pro-image (input_image_url compris), 15 reçues"
    assert response.status_code == 400
    assert response.json() == {"error": message, "details": [{"field": "input_image_urls", "message": message}]}
    at_limit = api.post("/api/images/generate", json={"prompt": "p", "input_image_urls": urls, "model": "pro"})
    assert at_limit.status_code == 202


def test_a_bad_reference_image_fails_the_job_naming_it(api: Any, standin: Any, image_server: Any) -> None:
    missing = f"{image_server.base_url}/absent.png"
    job_id = create_job(api, input_image_urls=[image_server.photo_url, missing])
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["errors"] == [f"Image source inaccessible (HTTP 404) (image de référence 2 : {missing})"]
    assert result["error_code"] == "input_image_unreachable"
    assert standin.calls() == []  # checked before any model call


def test_a_gs_object_that_is_not_an_image_is_invalid(api: Any, standin: Any) -> None:
    name = f"inputs/{uuid.uuid4().hex}.png"
    requests.post(
        f"{STORAGE}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": name}, data=b"not an image", timeout=10,
    ).raise_for_status()
    job_id = create_job(api, input_image_urls=[f"gs://{BUCKET}/{name}"])
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["error_code"] == "input_image_invalid"
    (error,) = result["errors"]
    assert error.startswith("Image source invalide : ") and error.endswith(f"(image de référence 1 : gs://{BUCKET}/{name})")
    assert standin.calls() == []


def test_a_missing_gs_object_is_unreachable(api: Any, standin: Any) -> None:
    uri = f"gs://{BUCKET}/inputs/{uuid.uuid4().hex}.png"
    job_id = create_job(api, input_image_urls=[uri])
    assert api.wait_for_job(job_id)["status"] == "FAILED"
    result = api.get(f"/api/images/result/{job_id}").json()
    assert result["errors"] == [f"Image source inaccessible : objet introuvable (image de référence 1 : {uri})"]
    assert result["error_code"] == "input_image_unreachable"
    assert standin.calls() == []


def test_gs_uris_outside_the_allowed_buckets_and_bad_items_are_400s(api: Any) -> None:
    cases = {
        "gs://someone-elses-bucket/a.png": f"input_image_urls[0] : bucket someone-elses-bucket non autorisé ({BUCKET})",
        "ftp://example.com/a.png": "input_image_urls[0] doit être une URL http(s) ou gs:// valide",
        "http://127.0.0.1/a.png": None,  # accepted here: the test stack allows private URLs
    }
    for url, message in cases.items():
        response = api.post("/api/images/generate", json={"prompt": "p", "input_image_urls": [url]})
        if message is None:
            assert response.status_code == 202, response.text
        else:
            assert (response.status_code, response.json()["error"]) == (400, message)
    empty = api.post("/api/images/generate", json={"prompt": "p", "input_image_urls": []})
    assert (empty.status_code, empty.json()["error"]) == (400, "input_image_urls doit être une liste non vide d'URL")


def test_the_stand_in_part_is_the_prepared_photo(api: Any, standin: Any, image_server: Any) -> None:
    job_id = create_job(api, input_image_urls=[image_server.photo_url])
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    (call,) = standin.calls()
    (part,) = call["input_images"]
    from imagegen.generation.imaging import prepare_input

    data, _ = prepare_input(image_server.photo)
    assert part == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
