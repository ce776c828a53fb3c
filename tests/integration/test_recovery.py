"""No job is left behind: the queue's last attempt, Gemini quota, leases lost mid-call.

Tasks are delivered to the worker directly, the way Cloud Tasks would
(``X-CloudTasks-TaskRetryCount`` says which attempt it is), to jobs written as
the API writes them but with no task queued, so nothing here depends on how
the local Tasks emulator dispatches.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.stack import Stack
from tests.integration.helpers import abandoned_job, deliver_task, queued_job, stored_images, stored_objects, wait_until

GAVE_UP = "Échec de la génération après plusieurs tentatives"
QUOTA = "Quota Gemini dépassé, réessayez plus tard"


def last(stack: Stack) -> str:
    """X-CloudTasks-TaskRetryCount of the queue's last attempt (WORKER_MAX_ATTEMPTS)."""
    return str(int(stack.env["WORKER_MAX_ATTEMPTS"]) - 1)


def attempt(stack: Stack, job_id: str, retries: str = "0") -> tuple[int, str]:
    response = deliver_task(stack, job_id, **{"X-CloudTasks-TaskRetryCount": retries})
    return response.status_code, response.json()["outcome"]


def test_the_last_attempt_fails_a_job_whose_lease_is_busy(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    job = abandoned_job(jobs, datetime.now(UTC) + timedelta(minutes=10))
    ref = jobs.document(job["job_id"])
    assert attempt(stack, job["job_id"], "3") == (409, "busy")  # earlier attempts: come back later
    assert ref.get().to_dict()["status"] == "GENERATING"
    assert attempt(stack, job["job_id"], last(stack)) == (200, "failed")  # the queue's last: end it
    final = ref.get().to_dict()
    assert (final["status"], final["errors"], final["lease"]) == ("FAILED", [GAVE_UP], None)
    assert final["error_code"] == "internal"
    assert api.get(f"/api/images/result/{job['job_id']}").json()["errors"] == [GAVE_UP]
    assert standin.calls() == []
    assert attempt(stack, job["job_id"], last(stack)) == (200, "finished")  # a duplicate changes nothing


def test_a_quota_error_after_the_sdk_retries_goes_back_to_the_queue(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    standin.configure(faults=[{"kind": "429", "match": None, "times": 5}])  # = GEMINI_RETRY_ATTEMPTS
    job_id = queued_job(jobs, size="512x512")["job_id"]
    assert attempt(stack, job_id) == (429, "retry")  # non-2xx: Cloud Tasks backs off and retries
    between = jobs.document(job_id).get().to_dict()
    assert (between["status"], between["errors"], between["lease"]) == ("GENERATING", [], None)
    assert attempt(stack, job_id, "1") == (200, "completed")  # the quota came back
    assert api.get(f"/api/images/status/{job_id}").json()["status"] == "COMPLETED"
    assert [call["status"] for call in standin.calls()] == [429] * 5 + [200]


def test_a_quota_error_on_the_last_attempt_fails_the_job(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    standin.configure(faults=[{"kind": "429", "match": None, "times": None}])
    job_id = queued_job(jobs, size="512x512")["job_id"]
    assert attempt(stack, job_id, last(stack)) == (200, "failed")
    status = api.get(f"/api/images/status/{job_id}").json()
    assert (status["status"], status["errors"], status["error_code"]) == ("FAILED", [QUOTA], "quota_exhausted")


def test_a_delivery_that_lost_its_lease_keeps_the_image_it_may_share(
    api: Any, standin: Any, stack: Stack, jobs: Any
) -> None:
    """Taken over mid-call (not cancelled): the object under that name may be the newer delivery's."""
    standin.configure(latency_ms=2000)
    job_id = queued_job(jobs, size="512x512")["job_id"]
    ref = jobs.document(job_id)
    with ThreadPoolExecutor(1) as pool:
        old = pool.submit(attempt, stack, job_id)
        wait_until(lambda: standin.calls() or ref.get().get("status") == "GENERATING", 10, "the call starts")
        # A newer delivery takes the job over (as after an expired lease) and records image 1.
        newer = {"owner": "newer-delivery", "expires_at": datetime.now(UTC) + timedelta(minutes=5)}
        ref.update({"lease": newer})
        assert old.result(timeout=30) == (200, "stopped")
    assert stored_images(job_id) == [f"generated_images/{job_id}/image_1.png"]
    assert ref.get().to_dict()["lease"] == newer
    ref.delete()  # an active job would make the next tests wait for it


def test_a_delivery_of_a_cancelled_job_deletes_its_image(api: Any, standin: Any, stack: Stack, jobs: Any) -> None:
    standin.configure(latency_ms=2000)
    job_id = queued_job(jobs, size="512x512")["job_id"]
    with ThreadPoolExecutor(1) as pool:
        old = pool.submit(attempt, stack, job_id)
        wait_until(lambda: jobs.document(job_id).get().get("status") == "GENERATING", 10, "the call starts")
        assert api.post(f"/api/images/cancel/{job_id}").status_code == 200
        assert old.result(timeout=30) == (200, "stopped")
    time.sleep(0.2)
    assert stored_objects(job_id) == []
