"""200 jobs from 20 concurrent clients on the local stack: none lost, none doubled, no 5xx.

The load itself is ``bench/load.py``'s (``run_load``): each client has its own
HTTP session, creates its 10 jobs, then polls them in creation order (the
order they finish in), one request every 0.5 s, so polling stays a small
share of the 2-core machine. The local Cloud Tasks emulator dispatches one
task at a time, so the jobs run one after the other: the time printed with
``-s`` is the whole local pipeline's per-job cost, not Cloud Tasks' parallelism.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest
import requests

from bench.load import report, run_load
from emulator.stack import Stack
from tests.conftest import API_BASE_URL
from tests.integration.helpers import BUCKET, STORAGE

JOBS = 200
CLIENTS = 20
LATENCY_MS = 20
# Measured on the 2-core machine: 200 jobs in ~53 s (3.75 jobs/s). The margin
# absorbs other work on the machine; a timeout says how far the run got.
TIMEOUT_SECONDS = 180


def objects_per_job() -> collections.Counter[str]:
    """Objects under generated_images/, counted per job id (the storage emulator does not page)."""
    response = requests.get(
        f"{STORAGE}/storage/v1/b/{BUCKET}/o", params={"prefix": "generated_images/"}, timeout=30
    )
    response.raise_for_status()
    names = [item["name"] for item in response.json().get("items", [])]
    # Each image has its 256-pixel thumbnail beside it: count images only.
    return collections.Counter(name.split("/")[1] for name in names if not name.endswith("_thumb.webp"))


@pytest.mark.timeout(TIMEOUT_SECONDS + 60)
def test_200_jobs_from_20_clients_all_complete_exactly_once(stack: Stack, standin: Any) -> None:
    standin.configure(latency_ms=LATENCY_MS)
    result = run_load(JOBS, CLIENTS, poll_interval=0.5, timeout=TIMEOUT_SECONDS, base_url=API_BASE_URL)
    print("\n" + report(result, LATENCY_MS))

    assert not [key for key in result.codes if key[1] >= 500 or key[1] == 0], dict(result.codes)
    assert set(result.codes) == {("create", 202), ("poll", 200)}, dict(result.codes)
    assert result.codes[("create", 202)] == JOBS
    assert len(set(result.job_ids)) == JOBS
    assert len(result.final) == JOBS, (
        f"{JOBS - len(result.final)} job(s) unfinished after {result.elapsed:.0f} s "
        f"({len(result.final) / result.elapsed:.2f} jobs/s)"
    )
    assert collections.Counter(result.final.values()) == {"COMPLETED": JOBS}

    # Nothing lost: every id still answers. Nothing doubled: one object and one model call per job.
    with requests.Session() as session:
        answers = collections.Counter(
            session.get(f"{API_BASE_URL}/api/images/status/{job_id}", timeout=30).status_code
            for job_id in result.job_ids
        )
    assert answers == {200: JOBS}
    objects = objects_per_job()
    assert {job_id: objects[job_id] for job_id in result.job_ids if objects[job_id] != 1} == {}
    assert sum(objects[job_id] for job_id in result.job_ids) == JOBS
    assert len(standin.calls()) == JOBS
