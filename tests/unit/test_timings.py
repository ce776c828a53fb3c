"""metadata.timings: consecutive laps, parallel images charged along the critical path."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from imagegen.generation.timings import PHASES, JobTimings
from imagegen.models import ResultMetadata


def _sum(timings: dict[str, float]) -> float:
    return sum(timings[phase] for phase in PHASES)


def test_laps_add_up_to_the_total_with_the_queue_wait() -> None:
    timings = JobTimings()
    timings.queued_since(datetime.now(UTC) - timedelta(seconds=2))
    time.sleep(0.02)
    timings.lap("storage")
    time.sleep(0.01)
    timings.lap("input_fetch")
    result = timings.as_metadata()
    assert set(result) == {*PHASES, "total"}
    assert result["queued"] == pytest.approx(2.0, abs=0.05)
    assert result["storage"] >= 0.02 and result["input_fetch"] >= 0.01
    assert result["model"] == result["post_processing"] == 0
    assert _sum(result) == pytest.approx(result["total"], abs=0.003)
    ResultMetadata.model_validate(
        {"model_name": "m", "version": "v", "generation_time_seconds": 1.0, "input_tokens": 1,
         "output_size_bytes": 1, "timestamp": "t", "timings": result}
    )


def test_parallel_images_are_charged_along_the_one_that_finished_last() -> None:
    timings = JobTimings()
    fast, slow = timings.image(), timings.image()
    fast.seconds.update(model=0.5, post_processing=0.2)
    slow.seconds.update(model=0.01, post_processing=0.02)
    fast.done()
    time.sleep(0.05)
    slow.done()
    timings.end_parallel()
    result = timings.as_metadata()
    assert (result["model"], result["post_processing"]) == (0.01, 0.02)
    assert result["storage"] >= 0.02  # the rest of the stretch
    assert _sum(result) == pytest.approx(result["total"], abs=0.003)


def test_a_phase_never_takes_more_than_the_stretch() -> None:
    timings = JobTimings()
    image = timings.image()
    image.seconds.update(model=10.0)
    image.done()
    timings.end_parallel()
    result = timings.as_metadata()
    assert result["model"] < 1 and result["storage"] == 0
    assert _sum(result) == pytest.approx(result["total"], abs=0.003)


def test_an_image_timer_measures_its_phases() -> None:
    image = JobTimings().image()
    with image.phase("model"):
        time.sleep(0.02)
    with image.phase("post_processing"):
        pass
    assert image.seconds["model"] >= 0.02 and image.seconds["post_processing"] < 0.02
