"""Crashes and restarts on the real local stack: a worker killed mid-job, a job a
dead worker left behind, and the Firestore emulator restarted under running functions.

When the worker dies, the dispatch in flight ends without an answer and the
local Tasks emulator (``emulator.cloud_tasks``) retries it with the queue's
exponential backoff, as Cloud Tasks does: "connection refused" while the worker
is down, 409 ``busy`` once it is back and the dead delivery's lease still lives,
then a delivery that takes the job over once the lease has expired. The test
stack keeps infra/'s attempts but shrinks the backoff (0.5 s doubling to 4 s,
``TASKS_QUEUE_OVERRIDES`` in ``tests/conftest.py``) and the lease (15 s), so the
retries reach past the lease within seconds instead of minutes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.stack import FUNCTIONS, Stack
from tests.integration.helpers import (
    abandoned_job,
    create_job,
    deliver_task,
    object_generations,
    stored_images,
    stored_objects,
    wait_until,
)
from tests.loopback import Receiver

LATENCY_MS = 3000
IMAGES = 4


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
    # The queue retries, to a dead port and then into the live lease: nobody
    # may take the job over while the dead delivery's lease lives.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - killed_at)))
    early = deliver_task(stack, job_id)
    assert (early.status_code, early.json()["outcome"]) == (409, "busy")
    still = ref.get().to_dict()
    assert (still["status"], still["lease"], still["images"], still["attempts"]) == (
        "GENERATING", dead["lease"], dead["images"], 1
    )

    # The dead worker's model calls in flight reach the stand-in's log (which
    # records a call after its latency, even if its caller is gone) long before
    # the lease expires; from then on the model answers at once.
    time.sleep(max(0.0, LATENCY_MS / 1000 + 1.0 - (time.monotonic() - killed_at)))
    assert datetime.now(UTC) < dead["lease"]["expires_at"]
    calls_before = standin.calls()
    assert len(calls_before) <= IMAGES + 2  # 4 first calls + the SDK's 2 retries of the 429s
    standin.configure(latency_ms=0)

    # No task is sent by hand: the queue's own retries take the job over.
    status = api.wait_for_job(job_id, timeout=60)
    assert status["status"] == "COMPLETED", status
    completed_at = datetime.now(UTC)
    assert completed_at > dead["lease"]["expires_at"]

    names = [f"generated_images/{job_id}/image_{n}.png" for n in range(1, IMAGES + 1)]
    assert stored_images(job_id) == names
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
    job = abandoned_job(jobs, datetime.now(UTC) - timedelta(seconds=30), num_images=2, size="512x512")
    job_id = job["job_id"]
    response = deliver_task(stack, job_id)
    assert response.status_code == 200, response.text
    assert response.json() == {"job_id": job_id, "outcome": "completed"}
    status = api.get(f"/api/images/status/{job_id}").json()
    assert (status["status"], status["progress"]) == ("COMPLETED", 100)
    assert stored_images(job_id) == [f"generated_images/{job_id}/image_{n}.png" for n in (1, 2)]
    assert len(standin.calls()) == 2
    final = jobs.document(job_id).get().to_dict()
    assert final["lease"] is None and final["attempts"] == 2
    assert api.get(f"/api/images/result/{job_id}").json()["status"] == "COMPLETED"


def test_job_left_generating_with_a_live_lease_is_not_touched(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    job = abandoned_job(jobs, datetime.now(UTC) + timedelta(minutes=10))
    ref = jobs.document(job["job_id"])
    try:
        before = ref.get().to_dict()
        response = deliver_task(stack, job["job_id"])
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
        assert stored_images(job_id) == [f"generated_images/{job_id}/image_1.png"]
        assert api.get(f"/api/images/status/{before}").status_code == 404  # gone with the old emulator
        assert {name: stack.pid(name) for name in pids} == pids  # no function was restarted (or crashed)
        assert recovered_after < 30
        # Webhooks flow again: the new emulator delivers the trigger's events to the relay.
        (delivered,) = hooks.wait(hook_url, 1, timeout=20)
        assert (delivered.json()["job_id"], delivered.json()["status"]) == (job_id, "completed")
    finally:
        hooks.close()
