"""The seed's own examples, run as written against the local stack on port 9006."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
import requests
from PIL import Image

from emulator.stack import PORTS
from tests.integration.seed_doc import (
    SEED_COPY,
    SEED_SHARED,
    curl_examples,
    python_client,
)


def run_curl(command: str) -> tuple[int, Any]:
    """Run a seed curl command, adding only ``-w`` to learn the HTTP status."""
    result = subprocess.run(
        ["bash", "-c", command.strip() + " -s -w '\\n%{http_code}'"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_vendored_seed_matches_shared_copy() -> None:
    if not SEED_SHARED.exists():
        pytest.skip("no ../shared/seed beside this checkout")
    assert SEED_COPY.read_bytes() == SEED_SHARED.read_bytes()


def test_python_client_example_prints_a_completed_job(stack: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-c", python_client()], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "✅ Tâche créée : img_" in out
    assert "📊 Statut : COMPLETED - 1 image(s) générée(s) avec succès" in out
    assert "Dimensions : 1024x1024" in out and "Format : PNG" in out
    assert "Modèle : gemini-3.1-flash-image" in out
    url = next(line.split("URL : ", 1)[1] for line in out.splitlines() if "URL : " in line)
    assert url.startswith(f"http://localhost:{PORTS['api']}/generated_images/img_")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (1024, 1024))


def example_1() -> str:
    """Example 1 with its one shell bug fixed.

    As written, the apostrophe of ``l'espace`` closes the single-quoted JSON
    body, so bash stops at an unterminated quote before curl even runs; the
    only change is to escape that apostrophe the POSIX way.
    """
    return curl_examples()[0].replace("l'espace", "l'\\''espace")


def test_curl_example_1_as_written_is_a_shell_quoting_error() -> None:
    result = subprocess.run(["bash", "-n", "-c", curl_examples()[0]], capture_output=True, text=True)
    assert result.returncode != 0 and "unexpected EOF" in result.stderr


def test_curl_example_1_text_only(api: Any) -> None:
    status, body = run_curl(example_1())
    assert status == 202
    assert body["status"] == "PENDING"
    assert body["message"] == "Tâche de génération d'images créée avec succès"
    assert api.wait_for_job(body["job_id"])["status"] == "COMPLETED"


def test_curl_example_2_multimodal_with_loopback_image(api: Any, image_server: Any, standin: Any) -> None:
    command = curl_examples()[1].replace("https://example.com/photo.jpg", image_server.photo_url)
    status, body = run_curl(command)
    assert status == 202
    job = api.wait_for_job(body["job_id"])
    assert job["status"] == "COMPLETED", job
    result = api.get(f"/api/images/result/{body['job_id']}").json()
    assert len(result["images"]) == 2
    for image in result["images"]:
        assert (image["format"], image["dimensions"]) == ("JPEG", "1792x1024")
        decoded = Image.open(io.BytesIO(requests.get(image["url"], timeout=10).content))
        assert (decoded.format, decoded.size) == ("JPEG", (1792, 1024))
    calls = standin.calls()
    assert len(calls) == 2 and all(c["has_input_image"] for c in calls)
    # ultra asks for 4K where the model offers it (the default gemini-3.1-flash-image does)
    assert {(c["aspect_ratio"], c["image_size"]) for c in calls} == {("16:9", "4K")}
    assert "/photo.jpg" in image_server.requests


def test_curl_examples_3_and_4_as_written_answer_404(stack: Any) -> None:
    for command in curl_examples()[2:4]:
        status, body = run_curl(command)
        assert (status, body["error"]) == (404, "Tâche introuvable")


def test_curl_examples_3_and_4_with_a_real_job(api: Any) -> None:
    job_id = run_curl(example_1())[1]["job_id"]
    api.wait_for_job(job_id)
    status_cmd, result_cmd = (c.replace("img_abc123xyz", job_id) for c in curl_examples()[2:4])
    status, body = run_curl(status_cmd)
    assert status == 200
    assert set(body) == {"job_id", "status", "message", "progress", "created_at", "updated_at"}
    assert (body["status"], body["progress"]) == ("COMPLETED", 100)
    status, body = run_curl(result_cmd)
    assert status == 200
    assert set(body) == {"job_id", "status", "message", "images", "metadata"}
    assert set(body["images"][0]) >= {"file_path", "url", "description", "format", "size_bytes", "dimensions"}
    assert set(body["metadata"]) >= {  # the seed's fields (others are added beside them)
        "model_name", "version", "generation_time_seconds", "input_tokens", "output_size_bytes", "timestamp",
    }
    assert body["metadata"]["input_tokens"] > 0
    assert body["metadata"]["output_size_bytes"] == body["images"][0]["size_bytes"]


def test_health_check_as_in_the_seed(stack: Any) -> None:
    result = subprocess.run(
        ["curl", "-s", f"http://localhost:{PORTS['api']}/health"], capture_output=True, text=True, timeout=30, check=True
    )
    body = json.loads(result.stdout)
    assert body["status"] == "healthy"
    assert body["features"] == {"book_generation": False, "blog_generation": False, "image_generation": True}
    assert body["gemini_backend"] == "stand-in"
