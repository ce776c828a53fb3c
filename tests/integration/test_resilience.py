"""Crashes and restarts on the real local stack: a worker killed mid-job, a job a
dead worker left behind, and the Firestore emulator restarted under running functions.

How the local Cloud Tasks emulator behaves when the worker dies (read in
``gcloud_tasks_emulator/server.py`` and seen in ``.stack/test-logs/tasks.log``):
the dispatch in flight ends in ``RemoteDisconnected`` (a ``ConnectionError``:
counted as a failure, the task goes to the back of the queue), then the task
is redelivered every ~0.1 s (no backoff): "connection refused" while the worker
is down, 409 ``busy`` once it is back and the dead delivery's lease still
lives. ``TASKS_EMULATOR_MAX_RETRIES`` (9 in the stack) is spent in about a
second, and the emulator drops the task long before the 15 s lease
(``JOB_LEASE_SECONDS`` of the test stack) expires. Production Cloud Tasks
retries with backoff (10 s ... 300 s, 10 attempts, ``infra/tasks.tf``), which
reaches past the 600 s lease. So after the lease has expired, the test
delivers the task itself, as Cloud Tasks' later attempt would; if the local
queue ever keeps retrying long enough to do it on its own, the two deliveries
race for the lease and the assertions still hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from emulator.stack import FUNCTIONS, Stack
from tests.integration.helpers import (
    BUCKET,
    STORAGE,
    create_job,
    deliver_task,
    stored_objects,
)
from tests.loopback import Receiver

LATENCY_MS = 3000
IMAGES = 4


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> Iterator[Any]:
    """The jobs collection, through the Firestore emulator (google-cloud-firestore)."""
    from google.cloud import firestore

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
        client = firestore.Client(project=stack.project)
    try:
        yield client.collection(stack.env.get("JOBS_COLLECTION") or "image_jobs")
    finally:
        client.close()


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout} s: {what}")
        time.sleep(interval)


def object_generations(job_id: str) -> dict[str, str]:
    """Object name -> storage generation (a new one at every upload) for a job's images."""
    response = requests.get(
        f"{STORAGE}/storage/v1/b/{BUCKET}/o", params={"prefix": f"generated_images/{job_id}/"}, timeout=10
    )
    response.raise_for_status()
    return {item["name"]: item["generation"] for item in response.json().get("items", [])}


def abandoned_job(jobs: Any, lease_expires_at: datetime, **request: Any) -> dict[str, Any]:
    """Write a job as a worker that died while GENERATING leaves it.

    The document is built by ``job_store.new_job`` (what the API writes), then
    moved to GENERATING under the lease of a delivery that no longer runs.
    """
    from imagegen import job_store
    from imagegen.models import GenerateRequest, JobStatus

    params = GenerateRequest.model_validate({"prompt": "Un phare sous la pluie"} | request)
    job = job_store.new_job(params.job_fields(), owner="anonymous", webhook=None, trace="")
    job |= {
        "status": JobStatus.GENERATING.value,
        "message": job_store.STATUS_MESSAGES[JobStatus.GENERATING],
        "progress": 10,
        "attempts": 1,
        "lease": {"owner": "dead-worker", "expires_at": lease_expires_at},
    }
    jobs.document(job["job_id"]).create(job)
    return job


# --------------------------------------------------------------------------- worker crash


def test_worker_killed_mid_job_is_taken_over_once_its_lease_expires(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    # Two calls answer 429 first: the SDK retries them (another 3 s), so two
    # images are recorded ~3 s before the other two and the kill lands between.
    standin.configure(latency_ms=LATENCY_MS, faults=[{"kind": "429", "match": None, "times": 2}])
    job_id = create_job(api, num_images=IMAGES)
    ref = jobs.document(job_id)

    def partly_done() -> dict[str, Any] | None:
        job = ref.get().to_dict()
        assert job["status"] in ("PENDING", "INITIALIZING", "GENERATING"), job["status"]
        return job if job["images"] else None

    wait_until(partly_done, timeout=30, what=f"{job_id} records its first image")
    stack.kill("worker")
    killed_at = time.monotonic()
    dead = ref.get().to_dict()  # nothing writes to it any more
    recorded = sorted(dead["images"])
    missing = IMAGES - len(recorded)
    assert dead["status"] == "GENERATING"
    assert 1 <= len(recorded) < IMAGES, recorded
    assert dead["lease"]["owner"].startswith(f"{job_id}:")  # the queue's delivery, task named after the job
    assert dead["attempts"] == 1
    kept = {name: gen for name, gen in object_generations(job_id).items()
            if name.rsplit("_", 1)[1].split(".")[0] in recorded}  # fmt: skip
    assert len(kept) == len(recorded)

    stack.restart("worker")
    # The queue redelivers at once, to a dead port and then into the live lease:
    # nobody may take the job over while the dead delivery's lease lives.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - killed_at)))
    early = deliver_task(job_id, stack.shared_secret)
    assert (early.status_code, early.json()["outcome"]) == (409, "busy")
    still = ref.get().to_dict()
    assert (still["status"], still["lease"], still["images"], still["attempts"]) == (
        "GENERATING", dead["lease"], dead["images"], 1
    )

    # Wait out the lease; by then the dead worker's in-flight model calls have
    # all reached the stand-in (which logs a call even if its caller is gone).
    expires_at = dead["lease"]["expires_at"]
    time.sleep(max(0.0, (expires_at - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    calls_before = standin.calls()
    assert len(calls_before) <= IMAGES + 2  # 4 first calls + the SDK's 2 retries of the 429s
    standin.configure(latency_ms=0)

    late = deliver_task(job_id, stack.shared_secret)
    assert late.status_code in (200, 409), late.text  # 409: the queue itself got there first
    assert late.json()["outcome"] in ("completed", "busy", "finished")
    status = api.wait_for_job(job_id, timeout=60)
    assert status["status"] == "COMPLETED", status

    names = [f"generated_images/{job_id}/image_{n}.png" for n in range(1, IMAGES + 1)]
    assert stored_objects(job_id) == names
    after = object_generations(job_id)
    assert {name: after[name] for name in kept} == kept  # recorded images were not uploaded again
    new_calls = standin.calls()[len(calls_before):]
    assert len(new_calls) == missing, new_calls  # only the missing images were generated
    assert all(call["status"] == 200 for call in new_calls)

    final = ref.get().to_dict()
    assert final["lease"] is None and final["attempts"] == 2
    assert {n: final["images"][n] for n in recorded} == dead["images"]
    result = api.get(f"/api/images/result/{job_id}")
    assert result.status_code == 200
    assert [image["file_path"].rsplit("/", 1)[1] for image in result.json()["images"]] == [
        name.rsplit("/", 1)[1] for name in names
    ]


# --------------------------------------------------------------------------- a job left behind


def test_job_left_generating_with_an_expired_lease_is_taken_over(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    job = abandoned_job(jobs, datetime.now(timezone.utc) - timedelta(seconds=30), num_images=2, size="512x512")
    job_id = job["job_id"]
    response = deliver_task(job_id, stack.shared_secret)
    assert response.status_code == 200, response.text
    assert response.json() == {"job_id": job_id, "outcome": "completed"}
    status = api.get(f"/api/images/status/{job_id}").json()
    assert (status["status"], status["progress"]) == ("COMPLETED", 100)
    assert stored_objects(job_id) == [f"generated_images/{job_id}/image_{n}.png" for n in (1, 2)]
    assert len(standin.calls()) == 2
    final = jobs.document(job_id).get().to_dict()
    assert final["lease"] is None and final["attempts"] == 2
    assert api.get(f"/api/images/result/{job_id}").json()["status"] == "COMPLETED"


def test_job_left_generating_with_a_live_lease_is_not_touched(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    job = abandoned_job(jobs, datetime.now(timezone.utc) + timedelta(minutes=10))
    ref = jobs.document(job["job_id"])
    try:
        before = ref.get().to_dict()
        response = deliver_task(job["job_id"], stack.shared_secret)
        assert response.status_code == 409, response.text
        assert response.json() == {"job_id": job["job_id"], "outcome": "busy"}
        time.sleep(0.5)
        assert ref.get().to_dict() == before
        assert standin.calls() == []
        assert stored_objects(job["job_id"]) == []
        status = api.get(f"/api/images/status/{job['job_id']}").json()
        assert (status["status"], status["progress"]) == ("GENERATING", 10)
    finally:
        ref.delete()  # an active job would make the next tests wait for it


# --------------------------------------------------------------------------- Firestore restart


def test_functions_survive_a_firestore_emulator_restart(api: Any, standin: Any, stack: Stack) -> None:
    hooks = Receiver()
    hook_url = hooks.url()
    try:
        before = create_job(api, size="512x512")
        assert api.wait_for_job(before)["status"] == "COMPLETED"
        pids = {name: stack.pid(name) for name in FUNCTIONS}

        stack.restart("firestore")  # in memory: every document is gone; the trigger is registered again
        restarted = time.monotonic()
        codes: list[int] = []

        def created() -> str | None:
            response = api.post(
                "/api/images/generate",
                json={"prompt": "Après le redémarrage", "size": "512x512", "webhook_url": hook_url},
            )
            codes.append(response.status_code)
            return response.json()["job_id"] if response.status_code == 202 else None

        job_id = wait_until(created, timeout=30, what="a job is created after the restart", interval=1.0)
        recovered_after = time.monotonic() - restarted
        assert set(codes[:-1]) <= {503}, codes  # unavailable for a while at most, never another error
        assert api.wait_for_job(job_id, timeout=30)["status"] == "COMPLETED"
        assert stored_objects(job_id) == [f"generated_images/{job_id}/image_1.png"]
        assert api.get(f"/api/images/status/{before}").status_code == 404  # gone with the old emulator
        assert {name: stack.pid(name) for name in pids} == pids  # no function was restarted (or crashed)
        assert recovered_after < 30
        # Webhooks flow again: the new emulator delivers the trigger's events to the relay.
        (delivered,) = hooks.wait(hook_url, 1, timeout=20)
        assert (delivered.json()["job_id"], delivered.json()["status"]) == (job_id, "completed")
    finally:
        hooks.close()
