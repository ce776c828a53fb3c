"""Usage, cost, budgets and richer images on the running stack (real google-genai SDK, stand-in).

Each test uses its own owner (a fresh API key), so its usage totals hold only its jobs.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from PIL import Image

from emulator.stack import Stack
from tests.conftest import ROOT
from tests.integration.helpers import create_job


def _owner() -> str:
    return f"usage-{uuid.uuid4().hex[:10]}"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _keys_cli(stack: Stack, *args: str) -> str:
    """``python -m imagegen.api.keys ...`` against the stack's Firestore; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "imagegen.api.keys", *args],
        cwd=ROOT / "functions", env=stack.env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_images_carry_size_hash_thumbnail_and_usage_that_add_up(api: Any, make_key: Any) -> None:
    headers = make_key(_owner())
    job_id = create_job(api, headers, num_images=2, size="1792x1024", format="JPEG")
    assert api.wait_for_job(job_id, headers=headers)["status"] == "COMPLETED"
    body = api.get(f"/api/images/result/{job_id}", headers=headers).json()
    images, usage = body["images"], body["metadata"]["usage"]
    for n, image in enumerate(images, start=1):
        assert (image["width"], image["height"], image["dimensions"]) == (1792, 1024, "1792x1024")
        data = requests.get(image["url"], timeout=10).content
        assert image["sha256"] == hashlib.sha256(data).hexdigest()
        assert image["thumbnail_url"].endswith(f"/generated_images/{job_id}/image_{n}_thumb.webp")
        thumbnail = requests.get(image["thumbnail_url"], timeout=10)
        assert thumbnail.headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(thumbnail.content)) as picture:
            assert (picture.format, picture.size) == ("WEBP", (256, 146))  # 256 on the long side, 16:9 kept
        assert image["usage"]["images"] == 1 and image["usage"]["output_tokens"] > 0
        assert image["usage"]["cost_usd"] > 0
    for key in ("input_tokens", "output_tokens", "thinking_tokens", "images"):
        assert usage[key] == sum(image["usage"][key] for image in images)
    assert usage["cost_usd"] == pytest.approx(sum(image["usage"]["cost_usd"] for image in images), abs=1e-6)
    assert usage["images"] == 2
    assert body["metadata"]["input_tokens"] == usage["input_tokens"]  # the seed's field agrees

    day = api.get("/api/usage", params={"from": _today(), "to": _today()}, headers=headers).json()
    (today,) = day["days"]
    assert today == {"date": _today(), "jobs": 1} | {k: usage[k] for k in usage}
    assert day["total"] == {"jobs": 1} | usage
    assert (day["from_date"], day["to_date"]) == (_today(), _today())


def test_usage_days_are_per_owner_and_cover_the_range(api: Any, make_key: Any) -> None:
    alice, bob = make_key(_owner()), make_key(_owner())
    jobs = [create_job(api, alice), create_job(api, alice), create_job(api, bob)]
    for job_id, headers in zip(jobs, (alice, alice, bob)):
        assert api.wait_for_job(job_id, headers=headers)["status"] == "COMPLETED"
    costs = [
        api.get(f"/api/images/result/{job_id}", headers=alice).json()["metadata"]["usage"]["cost_usd"]
        for job_id in jobs[:2]
    ]
    start = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    report = api.get("/api/usage", params={"from": start, "to": _today()}, headers=alice).json()
    assert [day["date"] for day in report["days"]][-1] == _today() and len(report["days"]) == 3
    assert [day["jobs"] for day in report["days"]] == [0, 0, 2]
    assert report["total"]["jobs"] == 2 and report["total"]["images"] == 2
    assert report["total"]["cost_usd"] == pytest.approx(sum(costs), abs=1e-6)
    assert api.get("/api/usage", headers=bob).json()["total"]["jobs"] == 1  # default: this month


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-1-01"}, "from doit être une date AAAA-MM-JJ valide"),
        ({"to": "2026-02-30"}, "to doit être une date AAAA-MM-JJ valide"),
        ({"from": "２０２６-01-01"}, "from doit être une date AAAA-MM-JJ valide"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from doit être antérieure ou égale à to"),
        ({"from": "2026-01-01", "to": "2026-04-04"}, "La période ne doit pas dépasser 93 jours"),
    ],
)
def test_usage_parameters_are_parsed_strictly(api: Any, params: dict[str, str], message: str) -> None:
    response = api.get("/api/usage", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == message


def test_usage_accepts_exactly_93_days(api: Any) -> None:
    response = api.get("/api/usage", params={"from": "2026-01-01", "to": "2026-04-03"})
    assert response.status_code == 200 and len(response.json()["days"]) == 93


def test_a_spent_monthly_budget_refuses_new_jobs_with_402(api: Any, stack: Stack) -> None:
    key = _keys_cli(stack, "create", "--owner", _owner(), "--name", "budget", "--monthly-budget-usd", "0.01")
    headers = {"X-API-Key": key}
    job_id = create_job(api, headers)  # within budget: nothing spent yet this month
    assert api.wait_for_job(job_id, headers=headers)["status"] == "COMPLETED"
    cost = api.get(f"/api/images/result/{job_id}", headers=headers).json()["metadata"]["usage"]["cost_usd"]
    assert cost > 0.01
    refused = api.post("/api/images/generate", json={"prompt": "encore"}, headers=headers)
    assert refused.status_code == 402
    next_month = (datetime.now(UTC).date().replace(day=28) + timedelta(days=4)).replace(day=1)
    assert refused.json()["error"] == (
        f"Budget mensuel de cette clé API épuisé ({cost:.4f} USD dépensés sur 0.0100 USD) : "
        f"nouvelles tâches refusées jusqu'au {next_month.isoformat()}"
    )
    from imagegen_client import BudgetExceededError, ImageGenClient
    from tests.conftest import API_BASE_URL

    with ImageGenClient(API_BASE_URL, key) as client, pytest.raises(BudgetExceededError) as caught:
        client.create("encore")
    assert (caught.value.status_code, caught.value.message) == (402, refused.json()["error"])
    assert "budget 0.01 USD/month" in _keys_cli(stack, "list")
    _keys_cli(stack, "set-budget", key[:8], "--monthly-budget-usd", "5")  # raised: accepted again
    assert api.post("/api/images/generate", json={"prompt": "encore"}, headers=headers).status_code == 202



def test_the_python_clients_read_the_same_usage(api: Any, make_key: Any) -> None:
    import asyncio

    from imagegen_client import AsyncImageGenClient, ImageGenClient, UsageResponse
    from tests.conftest import API_BASE_URL

    headers = make_key(_owner())
    job_id = create_job(api, headers)
    assert api.wait_for_job(job_id, headers=headers)["status"] == "COMPLETED"
    key = headers["Authorization"].removeprefix("Bearer ")
    expected = api.get("/api/usage", params={"from": _today()}, headers=headers).json()

    async def read_async() -> UsageResponse:
        async with AsyncImageGenClient(API_BASE_URL, key) as client:
            return await client.usage(_today())

    with ImageGenClient(API_BASE_URL, key) as client:
        synced = client.usage(_today(), _today())
    for answer in (synced, asyncio.run(read_async())):
        assert answer.model_dump() == expected
        assert answer.total.jobs == 1 and answer.total.cost_usd > 0
