"""The time budget of one job, checked between the code's defaults and infra/ (python-hcl2).

* One model call, with the SDK's retries, is at worst ``attempts x timeout``
  plus the backoff between attempts. A job's calls run in parallel (one thread
  per image, at most 4), so they take one call's worst time together; with the
  input-image download before and the post-processing after, that fits in the
  worker's timeout.
* The worker's timeout stays below Cloud Tasks' default dispatch deadline (the
  code sets none): the queue never gives up on an attempt that still runs.
* The lease is longer than a live attempt (the timeout ends it first) and
  shorter than the timeout plus the queue's first backoff: the attempt after a
  timed-out one finds the lease expired and takes the job over.
* The sweeper calls a job quiet only after a silence no retrying queue leaves:
  longer than a lease, the queue's longest backoff and an attempt together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from imagegen.config import Settings, load_settings
from imagegen.generation import gemini, source_image
from tests.infra import hcl

DISPATCH_DEADLINE_SECONDS = 600  # Cloud Tasks' default for HTTP tasks
POST_PROCESSING_SECONDS = 30  # Pillow, uploads and Firestore writes of 4 images


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The code's defaults: settings read with none of the variables set."""
    for name in ("GEMINI_TIMEOUT_SECONDS", "GEMINI_RETRY_ATTEMPTS", "GEMINI_RETRY_INITIAL_DELAY_MS",
                 "JOB_LEASE_SECONDS", "WORKER_MAX_ATTEMPTS", "SWEEPER_QUIET_AFTER_SECONDS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def seconds(duration: str) -> float:
    match = re.fullmatch(r"([0-9.]+)s", duration)
    assert match, duration
    return float(match.group(1))


def worker_timeout() -> int:
    service = hcl.blocks(hcl.functions()["worker"], "service_config")[0]
    return int(hcl.attr(service, "timeout_seconds"))


def jobs_retry() -> dict:
    return hcl.blocks(hcl.tf()["resource"]["google_cloud_tasks_queue"]["jobs"], "retry_config")[0]


def worst_model_call(settings: Settings) -> float:
    """One call and the SDK's retries of it: every attempt times out, every wait is the longest."""
    waits = sum(
        min(settings.gemini_retry_initial_delay * 2**i, gemini.RETRY_MAX_DELAY) + gemini.RETRY_JITTER
        for i in range(settings.gemini_retry_attempts - 1)
    )
    return settings.gemini_retry_attempts * settings.gemini_timeout_seconds + waits


def test_a_jobs_calls_fit_in_the_workers_timeout(defaults: Settings) -> None:
    # worker._run_parallel starts one thread per missing image (at most 4): their
    # calls overlap, so together they take one call's worst time, not four.
    budget = source_image.TOTAL_SECONDS + worst_model_call(defaults) + POST_PROCESSING_SECONDS
    assert budget < worker_timeout(), (budget, worker_timeout())


def test_the_queue_never_abandons_a_running_attempt() -> None:
    assert worker_timeout() < DISPATCH_DEADLINE_SECONDS


def test_the_lease_outlives_an_attempt_and_not_the_queues_first_backoff(defaults: Settings) -> None:
    first_backoff = seconds(hcl.attr(jobs_retry(), "min_backoff"))
    assert worker_timeout() < defaults.job_lease_seconds < worker_timeout() + first_backoff


def test_the_last_attempt_the_worker_knows_is_the_queues_last(defaults: Settings) -> None:
    assert hcl.attr(jobs_retry(), "max_attempts") == "${local.jobs_queue_max_attempts}"
    assert int(hcl.tf()["locals"]["jobs_queue_max_attempts"]) == defaults.worker_max_attempts


def test_the_sweeper_waits_longer_than_a_retrying_queue_can_be_silent(defaults: Settings) -> None:
    longest_backoff = seconds(hcl.attr(jobs_retry(), "max_backoff"))
    assert defaults.sweeper_quiet_after_seconds > defaults.job_lease_seconds + longest_backoff + worker_timeout()
