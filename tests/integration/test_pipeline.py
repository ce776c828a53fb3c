"""The pipeline end to end: API → Firestore → Cloud Tasks → worker → Gemini stand-in → Storage."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from tests.integration.helpers import create_job, fetch_image, stored_images

SIZES = ["512x512", "1024x1024", "1792x1024"]
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@pytest.mark.parametrize(("size", "fmt"), list(itertools.product(SIZES, FORMATS)))
def test_every_size_and_format_is_exact(api: Any, size: str, fmt: str) -> None:
    job_id = create_job(api, size=size, format=fmt, num_images=1)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    result = api.get(f"/api/images/result/{job_id}").json()
    (image,) = result["images"]
    decoded, content_type = fetch_image(image["url"])
    assert f"{decoded.width}x{decoded.height}" == size == image["dimensions"]
    assert decoded.format == fmt == image["format"]
    assert content_type == FORMATS[fmt]
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]
    assert image["file_path"] == f"gs://imagegen-local-images/generated_images/{job_id}/image_1.{extension}"


@pytest.mark.parametrize("style", ["photorealistic", "artistic", "illustration", "3d-render"])
def test_style_is_folded_into_the_prompt(api: Any, standin: Any, style: str) -> None:
    job_id = create_job(api, prompt="Une forêt en automne", style=style)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    (call,) = standin.calls()
    assert call["prompt"].startswith("Une forêt en automne\n\n")
    keyword = {"photorealistic": "photorealistic", "artistic": "artwork", "illustration": "illustration",
               "3d-render": "3D render"}[style]
    assert keyword in call["prompt"]


@pytest.mark.parametrize(
    ("size", "quality", "tier"),
    [("1024x1024", "standard", "1K"), ("1024x1024", "high", "1K"), ("1024x1024", "ultra", "4K"),
     ("1792x1024", "high", "2K"), ("512x512", "standard", "1K")],
)
def test_quality_maps_to_image_size(api: Any, standin: Any, size: str, quality: str, tier: str) -> None:
    job_id = create_job(api, size=size, quality=quality)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    (call,) = standin.calls()
    assert call["image_size"] == tier
    assert call["aspect_ratio"] == ("16:9" if size == "1792x1024" else "1:1")


def test_four_images_are_generated_in_parallel_with_rising_progress(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1500)
    job_id = create_job(api, num_images=4, format="WEBP")
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.get(f"/api/images/status/{job_id}").json()
        if not seen or seen[-1] != (status["status"], status["progress"]):
            seen.append((status["status"], status["progress"]))
        if status["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.05)
    order = ["PENDING", "INITIALIZING", "GENERATING", "SAVING", "COMPLETED"]
    statuses = [s for s, _ in seen]
    assert statuses[-1] == "COMPLETED"
    assert "GENERATING" in statuses
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    result = api.get(f"/api/images/result/{job_id}").json()
    assert [i["url"].rsplit("/", 1)[1] for i in result["images"]] == [f"image_{n}.webp" for n in range(1, 5)]
    assert len(standin.calls()) == 4
    # Four 1.5 s calls one after another would take at least 6 s.
    assert result["metadata"]["generation_time_seconds"] < 6
    assert stored_images(job_id) == [f"generated_images/{job_id}/image_{n}.webp" for n in range(1, 5)]


def test_result_of_a_running_job_is_202_without_images(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=2000)
    job_id = create_job(api)
    response = api.get(f"/api/images/result/{job_id}")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] in ("PENDING", "INITIALIZING", "GENERATING")
    assert "images" not in body and "progress" in body
    api.wait_for_job(job_id)
    assert api.get(f"/api/images/result/{job_id}").status_code == 200


def test_status_timestamps_are_iso_8601(api: Any) -> None:
    from datetime import datetime

    job_id = create_job(api)
    status = api.wait_for_job(job_id)
    created = datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))
    updated = datetime.fromisoformat(status["updated_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None and updated >= created


def test_metadata_records_tokens_sizes_and_model(api: Any) -> None:
    job_id = create_job(api, num_images=3)
    api.wait_for_job(job_id)
    result = api.get(f"/api/images/result/{job_id}").json()
    metadata = result["metadata"]
    assert metadata["model_name"] == "gemini-3.1-flash-image"
    assert "stand-in" in metadata["version"]
    assert metadata["output_size_bytes"] == sum(i["size_bytes"] for i in result["images"])
    # The stand-in counts ~1 token per 4 prompt characters, per call: three calls.
    assert metadata["input_tokens"] % 3 == 0 and metadata["input_tokens"] > 0
    for image in result["images"]:
        assert image["description"] == "Un phare sous la pluie"
        _, content_type = fetch_image(image["url"])
        assert content_type == "image/png"


def test_timings_say_where_the_time_went_and_add_up(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=800)
    created = time.monotonic()
    job_id = create_job(api, num_images=2, format="JPEG")
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    seen_after = time.monotonic() - created
    timings = api.get(f"/api/images/result/{job_id}").json()["metadata"]["timings"]
    phases = ("queued", "input_fetch", "model", "post_processing", "storage")
    assert set(timings) == {*phases, "total"}
    assert all(timings[phase] >= 0 for phase in phases)
    assert sum(timings[phase] for phase in phases) == pytest.approx(timings["total"], abs=0.005)
    # Each call lasts the stand-in's latency, its drawing inside it; two calls ran in parallel.
    assert 0.8 <= timings["model"] < 1.6
    assert timings["input_fetch"] == 0 and timings["post_processing"] > 0 and timings["storage"] > 0
    assert timings["total"] < seen_after + 0.5  # (clocks of the test and the worker may differ slightly)
    assert [call["slept_ms"] + call["render_ms"] for call in standin.calls()] == [
        pytest.approx(800, abs=0.2)
    ] * 2


def test_timings_count_the_input_download(api: Any, image_server: Any) -> None:
    job_id = create_job(api, input_image_url=image_server.photo_url)
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    timings = api.get(f"/api/images/result/{job_id}").json()["metadata"]["timings"]
    assert timings["input_fetch"] > 0


@pytest.mark.parametrize("job_id", ["img_doesnotexist00", "nope", "img_../../etc", "IMG_ABCDEFGH1", "img_" + "a" * 40])
def test_unknown_or_malformed_ids_are_404(api: Any, job_id: str) -> None:
    for route in ("status", "result"):
        response = api.get(f"/api/images/{route}/{job_id}")
        assert response.status_code == 404
        assert response.json()["error"] == "Tâche introuvable"


@pytest.mark.parametrize(
    "path",
    ["/generated_images/img_doesnotexist00/image_1.png", "/generated_images/img_x/../../secret",
     "/generated_images/img_aaaaaaaaaaaaaaaa/image_9.png", "/generated_images/img_aaaaaaaaaaaaaaaa/..%2f..%2fx"],
)
def test_image_route_refuses_unknown_and_traversal(api: Any, path: str) -> None:
    assert api.get(path).status_code == 404
