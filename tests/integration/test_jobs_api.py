"""Owners, idempotency, cancellation, listing and rate limits on the real stack."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from imagegen.clients import firestore_client
from tests.integration.helpers import create_job, side_api, stored_objects


def test_another_owners_job_is_not_found(api: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    alice, bob = make_key("alice"), make_key("bob")
    response = api.post("/api/images/generate", json={"prompt": "à alice"}, headers=alice)
    job_id = response.json()["job_id"]
    for method, path in (("get", "status"), ("get", "result"), ("post", "cancel")):
        for caller in (bob, {}):  # another key, and anonymous
            answer = getattr(api, method)(f"/api/images/{path}/{job_id}", headers=caller)
            assert (answer.status_code, answer.json()["error"]) == (404, "Tâche introuvable"), (path, caller)
    assert api.get(f"/api/images/status/{job_id}", headers=alice).status_code == 200
    listed = api.get("/api/images/jobs", headers=bob).json()["jobs"]
    assert job_id not in {job["job_id"] for job in listed}
    assert job_id in {job["job_id"] for job in api.get("/api/images/jobs", headers=alice).json()["jobs"]}


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer igk_not_a_real_key"}, {"X-API-Key": "nope"}, {"Authorization": "Basic YTpi"}],
)
def test_bad_credentials_are_401_even_when_auth_is_optional(api: Any, headers: dict[str, str]) -> None:
    response = api.post("/api/images/generate", json={"prompt": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_auth_required_refuses_anonymous_callers(stack: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    key = make_key("carol")
    with side_api(stack.env | {"AUTH_REQUIRED": "true"}) as base:
        anonymous = requests.post(f"{base}/api/images/generate", json={"prompt": "x"}, timeout=10)
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "Authentification requise")
        assert requests.get(f"{base}/health", timeout=10).status_code == 200
        x_api_key = {"X-API-Key": key["Authorization"].split(" ", 1)[1]}
        created = requests.post(f"{base}/api/images/generate", json={"prompt": "x"}, headers=x_api_key, timeout=10)
        assert created.status_code == 202


def test_idempotency_key_replays_the_same_job(api: Any, standin: Any) -> None:
    headers = {"Idempotency-Key": "order-42-retry-safe"}
    body = {"prompt": "Une seule fois", "num_images": 2}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: api.post("/api/images/generate", json=body, headers=headers), range(4)))
    assert {a.status_code for a in answers} == {202}
    job_ids = {a.json()["job_id"] for a in answers}
    assert len(job_ids) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    (job_id,) = job_ids
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    assert len(standin.calls()) == 2  # one job, one task: two model calls
    later = api.post("/api/images/generate", json=body, headers=headers)
    assert (later.status_code, later.json()["job_id"]) == (202, job_id)


def test_idempotency_key_with_another_body_is_422(api: Any) -> None:
    headers = {"Idempotency-Key": "same-key-other-body"}
    assert api.post("/api/images/generate", json={"prompt": "un"}, headers=headers).status_code == 202
    response = api.post("/api/images/generate", json={"prompt": "deux"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == "Idempotency-Key déjà utilisée avec une requête différente"


def test_idempotency_keys_are_scoped_by_owner(api: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    body = {"prompt": "même clé, autre client"}
    first = api.post("/api/images/generate", json=body, headers=make_key("dave") | {"Idempotency-Key": "k1"})
    second = api.post("/api/images/generate", json=body, headers=make_key("erin") | {"Idempotency-Key": "k1"})
    assert first.json()["job_id"] != second.json()["job_id"]


def test_idempotency_key_expires_after_24_hours(api: Any, make_key: Any) -> None:
    settings_key = api.post("/api/images/generate", json={"prompt": "ttl"}, headers={"Idempotency-Key": "ttl-key"})
    assert settings_key.status_code == 202
    records = list(firestore_client().collection("idempotency_keys").where(
        filter=FieldFilter("job_id", "==", settings_key.json()["job_id"])
    ).stream())
    assert len(records) == 1
    record = records[0].to_dict()
    # expires_at is the field Firestore's TTL policy (infra/firestore.tf) deletes on.
    assert (record["expires_at"] - record["created_at"]).total_seconds() == 24 * 3600


@pytest.mark.parametrize("key", ["", "x" * 256, "clé-accentuée", "with space"])
def test_invalid_idempotency_keys_are_400(api: Any, key: str) -> None:
    response = api.post("/api/images/generate", json={"prompt": "x"}, headers={"Idempotency-Key": key.encode("utf-8")})
    assert response.status_code == 400


def test_cancel_stops_the_job_and_keeps_no_images(api: Any, standin: Any) -> None:
    standin.configure(latency_ms=1500)
    job_id = create_job(api, num_images=4)
    deadline = time.monotonic() + 30
    while api.get(f"/api/images/status/{job_id}").json()["status"] != "GENERATING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = api.post(f"/api/images/cancel/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    final = api.wait_for_job(job_id)
    assert final["status"] == "CANCELLED"
    standin.configure(latency_ms=0)
    create_job_after = create_job(api)  # the worker is free again and the queue moves on
    api.wait_for_job(create_job_after)
    # The cancelled delivery's calls were in flight: each image it still stores is deleted
    # when its record is refused, so nothing may be left once its last call was answered.
    standin.wait_until_quiet()
    deadline = time.monotonic() + 10
    while (left := stored_objects(job_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    result = api.get(f"/api/images/result/{job_id}")
    assert result.status_code == 200 and "images" not in result.json()
    again = api.post(f"/api/images/cancel/{job_id}")
    assert (again.status_code, again.json()["error"]) == (409, "La tâche est déjà terminée (CANCELLED)")


def test_cancel_of_a_finished_job_is_409(api: Any) -> None:
    job_id = create_job(api)
    api.wait_for_job(job_id)
    response = api.post(f"/api/images/cancel/{job_id}")
    assert (response.status_code, response.json()["error"]) == (409, "La tâche est déjà terminée (COMPLETED)")


def test_list_is_newest_first_with_cursor_pagination(api: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    frank = make_key("frank")
    created = [api.post("/api/images/generate", json={"prompt": f"n°{i}"}, headers=frank).json()["job_id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = api.get("/api/images/jobs", params={"limit": 2, "cursor": cursor}, headers=frank).json()
        seen += [job["job_id"] for job in page["jobs"]]
        assert len(page["jobs"]) <= 2
        if not page.get("next_cursor"):
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(created))
    for job_id in created:
        api.wait_for_job(job_id, headers=frank)
    completed = api.get("/api/images/jobs", params={"status": "COMPLETED", "limit": 100}, headers=frank).json()
    assert {job["job_id"] for job in completed["jobs"]} == set(created)
    assert api.get("/api/images/jobs", params={"status": "FAILED"}, headers=frank).json()["jobs"] == []


@pytest.mark.parametrize(
    ("params", "error"),
    [({"limit": 0}, "limit doit être entre 1 et 100"), ({"limit": "abc"}, "limit doit être entre 1 et 100"),
     ({"limit": 101}, "limit doit être entre 1 et 100"), ({"status": "DONE"}, None),
     ({"cursor": "img_doesnotexist00"}, "cursor invalide"), ({"cursor": "../../x"}, "cursor invalide")],
)
def test_list_parameter_errors(api: Any, params: dict[str, Any], error: str | None) -> None:
    response = api.get("/api/images/jobs", params=params)
    assert response.status_code == 400
    assert error is None or response.json()["error"] == error


def test_rate_limit_per_owner_answers_429_with_retry_after(stack: Any, make_key: Callable[[str], dict[str, str]]) -> None:
    key = make_key("grace")
    with side_api(stack.env | {"RATE_LIMIT_PER_MINUTE": "3"}) as base:
        statuses = [
            requests.post(f"{base}/api/images/generate", json={"prompt": "vite"}, headers=key, timeout=10)
            for _ in range(4)
        ]
        assert [s.status_code for s in statuses] == [202, 202, 202, 429]
        assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
        assert statuses[-1].json()["error"].startswith("Trop de tâches créées")
        # The budget is the owner's: another key of the same owner shares it.
        same_owner = requests.post(f"{base}/api/images/generate", json={"prompt": "x"}, headers=make_key("grace"), timeout=10)
        assert same_owner.status_code == 429
        # Another key has its own budget.
        other = requests.post(f"{base}/api/images/generate", json={"prompt": "x"}, headers=make_key("heidi"), timeout=10)
        assert other.status_code == 202
