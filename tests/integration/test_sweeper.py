"""Every accepted job ends: the Tasks emulator frozen under the API, and the sweeper.

The emulator's process group is frozen (SIGSTOP through the stack's pid for
"tasks") and resumed (SIGCONT), whichever emulator runs. The sweeper function
(port 9014 + offset) is called the way Cloud Scheduler would, with an OIDC token
for the stack's ``TASKS_SERVICE_ACCOUNT`` (minted with its Tasks emulator's key). The test stack makes its thresholds short: unqueued jobs are
queued after 3 s, quiet jobs handled after 20 s (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from emulator.stack import Stack, functions_bin
from tests.integration.helpers import (
    ROOT,
    abandoned_job,
    deliver_task,
    queued_job,
    stored_images,
    wait_until,
)
from tests.tokens import cloud_tasks_token

GAVE_UP = "Échec de la génération après plusieurs tentatives"
QUIET_AFTER = 20


def scheduler(stack: Stack) -> dict[str, str]:
    """The Authorization header of Cloud Scheduler's calls to the sweeper."""
    return {"Authorization": f"Bearer {cloud_tasks_token(stack, stack.env['SWEEPER_URL'])}"}


def sweep(stack: Stack) -> dict[str, list[str]]:
    response = requests.post(stack.env["SWEEPER_URL"], headers=scheduler(stack), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_jobs_created_while_the_queue_is_frozen_all_end(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    key = {"Idempotency-Key": f"frozen-{time.time_ns()}"}
    body = {"prompt": "Pendant la panne", "size": "512x512"}
    group = stack.pid("tasks")
    assert group is not None
    os.killpg(group, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(api.post, "/api/images/generate", json=body, headers=h, timeout=90)
                       for h in ({}, {}, key)]  # fmt: skip
            answers = [future.result() for future in futures]
        assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
        ids = [a.json()["job_id"] for a in answers]
        for job_id in ids:  # stored, accepted, not queued: the sweeper's to queue
            job = jobs.document(job_id).get().to_dict()
            assert (job["status"], job["queued_at"]) == ("PENDING", None), job
    finally:
        os.killpg(group, signal.SIGCONT)

    replay = api.post("/api/images/generate", json=body, headers=key)
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (202, "true")
    assert replay.json()["job_id"] == ids[2]  # the same job, queued again by the replay
    sweep(stack)
    for job_id in ids:
        assert api.wait_for_job(job_id, timeout=60)["status"] == "COMPLETED"
        assert jobs.document(job_id).get().get("queued_at") is not None
        assert stored_images(job_id) == [f"generated_images/{job_id}/image_1.png"]
    # Each job ran once, however many times it was queued. (Its sweep also re-queues any job an
    # earlier test left quiet, e.g. one whose 20 s model call outlived its lease: not counted.)
    assert sum(call["prompt"].startswith(body["prompt"]) for call in standin.calls()) == 3


def test_the_sweeper_queues_a_job_the_api_stored_but_could_not_queue(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    job_id = queued_job(jobs, size="512x512")["job_id"]
    jobs.document(job_id).update({"queued_at": None})  # as if the API died right after the write
    time.sleep(3.5)  # SWEEPER_QUEUE_AFTER_SECONDS of the test stack
    assert job_id in sweep(stack)["queued"]
    assert api.wait_for_job(job_id)["status"] == "COMPLETED"
    assert job_id not in sweep(stack)["queued"]  # queued once: the next run leaves it


def test_a_replay_of_a_job_never_queued_queues_it(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    from imagegen.api.router import _digest
    from imagegen.models import GenerateRequest

    body = {"prompt": "Rejoué", "size": "512x512"}
    key = f"never-queued-{time.time_ns()}"
    job = queued_job(jobs, **body)
    jobs.document(job["job_id"]).update({"queued_at": None})
    jobs._client.collection("idempotency_keys").document(_digest("anonymous", key)).set({
        "job_id": job["job_id"], "owner": "anonymous",
        "request_hash": _digest(GenerateRequest.model_validate(body).model_dump_json()),
        "created_at": job["created_at"], "expires_at": job["created_at"] + timedelta(hours=24),
    })  # fmt: skip
    replay = api.post("/api/images/generate", json=body, headers={"Idempotency-Key": key})
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (202, "true")
    assert replay.json()["job_id"] == job["job_id"]
    assert api.wait_for_job(job["job_id"])["status"] == "COMPLETED"  # without the sweeper


def test_the_sweeper_requeues_a_job_whose_worker_was_killed(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    standin.configure(latency_ms=4000)
    job_id = queued_job(jobs, num_images=2, size="512x512")["job_id"]
    ref = jobs.document(job_id)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(deliver_task, stack, job_id)
        wait_until(lambda: ref.get().get("status") == "GENERATING", 15, "the worker starts the job")
        stack.kill("worker")
        assert isinstance(first.exception(timeout=10), requests.ConnectionError)
    stack.restart("worker")
    standin.configure(latency_ms=0)
    dead = ref.get().to_dict()
    assert dead["status"] == "GENERATING" and dead["lease"] is not None
    assert job_id not in sweep(stack)["requeued"]  # its lease lives: not abandoned yet

    quiet_at = dead["updated_at"] + timedelta(seconds=QUIET_AFTER + 1)
    time.sleep(max(0.0, (quiet_at - datetime.now(UTC)).total_seconds()))
    assert job_id in sweep(stack)["requeued"]  # nobody else would ever deliver it again
    assert api.wait_for_job(job_id, timeout=60)["status"] == "COMPLETED"
    final = ref.get().to_dict()
    assert (final["sweeps"], final["attempts"], final["lease"]) == (1, 2, None)
    assert stored_images(job_id) == [f"generated_images/{job_id}/image_{n}.png" for n in (1, 2)]


def test_the_sweeper_fails_a_job_its_attempts_could_not_finish(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job = abandoned_job(jobs, long_ago)
    ref = jobs.document(job["job_id"])
    # Claimed WORKER_MAX_ATTEMPTS times, the last delivery died an hour ago.
    claims = int(stack.env["WORKER_MAX_ATTEMPTS"])
    ref.update({"attempts": claims, "created_at": long_ago, "queued_at": long_ago, "updated_at": long_ago})
    assert job["job_id"] in sweep(stack)["failed"]
    final = ref.get().to_dict()
    assert (final["status"], final["errors"], final["lease"]) == ("FAILED", [GAVE_UP], None)
    assert standin.calls() == []
    assert job["job_id"] not in str(sweep(stack))  # ended: the next run leaves it


def test_the_sweeper_fails_a_job_it_already_swept_three_times(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job = abandoned_job(jobs, long_ago)
    jobs.document(job["job_id"]).update({"sweeps": 3, "queued_at": long_ago, "updated_at": long_ago})
    assert job["job_id"] in sweep(stack)["failed"]
    assert jobs.document(job["job_id"]).get().get("errors") == [GAVE_UP]


def test_a_job_the_queue_refuses_for_too_long_fails(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job_id = queued_job(jobs, size="512x512")["job_id"]
    jobs.document(job_id).update({"queued_at": None, "created_at": long_ago, "updated_at": long_ago})
    group = stack.pid("tasks")
    assert group is not None
    os.killpg(group, signal.SIGSTOP)
    try:
        response = requests.post(stack.env["SWEEPER_URL"], headers=scheduler(stack), timeout=120)
    finally:
        os.killpg(group, signal.SIGCONT)
    report = response.json()
    assert response.status_code == 500 and job_id in report["errors"]  # could not queue it...
    assert job_id in report["failed"]  # ...and it waited long enough: it ends
    status = api.get(f"/api/images/status/{job_id}").json()
    assert (status["status"], status["errors"]) == ("FAILED", ["File d'attente indisponible, la tâche n'a pas pu démarrer"])
    assert job_id not in str(sweep(stack))


def test_the_sweeper_answers_only_its_scheduler(stack: Stack) -> None:
    url = f"{stack.urls['sweeper']}/"
    assert requests.post(url, timeout=10).status_code == 401
    assert requests.post(url, headers={"Authorization": "Bearer forged"}, timeout=10).status_code == 401
    worker_token = {"Authorization": f"Bearer {cloud_tasks_token(stack, stack.env['WORKER_URL'])}"}
    assert requests.post(url, headers=worker_token, timeout=10).status_code == 401  # another audience
    assert requests.get(url, headers=scheduler(stack), timeout=10).status_code == 405


def test_the_sweeper_runs_by_hand(stack: Stack) -> None:
    done = subprocess.run(
        [functions_bin(ROOT, "python"), "-m", "imagegen.generation.sweeper"],
        cwd=ROOT / "functions", env=stack.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report) == {"queued", "requeued", "failed", "errors"} and report["errors"] == []
