"""The Tasks emulator's queue settings: read from infra/, Cloud Tasks' backoff rule, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cloud_tasks.config import QueueConfig, infra_queues, queue_configs, with_overrides

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_queues_are_read_from_the_terraform() -> None:
    queues = infra_queues(INFRA)
    assert set(queues) == {"image-jobs", "webhook-deliveries"}
    # variables.tf defaults, locals and literals of tasks.tf, resolved.
    assert queues["image-jobs"] == QueueConfig(
        max_dispatches_per_second=5, max_concurrent_dispatches=20, max_attempts=10,
        min_backoff=60, max_backoff=300, max_doublings=4, max_retry_duration=0,
    )  # fmt: skip
    assert queues["webhook-deliveries"] == QueueConfig(
        max_dispatches_per_second=10, max_concurrent_dispatches=50, max_attempts=25,
        min_backoff=10, max_backoff=3600, max_doublings=9, max_retry_duration=86400,
    )  # fmt: skip


def test_an_unresolvable_setting_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tasks.tf").write_text(
        'resource "google_cloud_tasks_queue" "q" {\n  name = "q"\n'
        "  rate_limits {\n    max_dispatches_per_second = var.missing\n  }\n}\n"
    )
    with pytest.raises(ValueError, match="var.missing"):
        infra_queues(tmp_path)


def test_backoff_follows_cloud_tasks_documented_example() -> None:
    # min 10 s, max 300 s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300 (Cloud Tasks' RetryConfig docs).
    config = QueueConfig(min_backoff=10, max_backoff=300, max_doublings=3)
    assert [config.retry_delay(n) for n in range(8)] == [10, 20, 40, 80, 160, 240, 300, 300]
    jobs = infra_queues(INFRA)["image-jobs"]  # the comment in infra/tasks.tf
    assert [jobs.retry_delay(n) for n in range(5)] == [60, 120, 240, 300, 300]


def test_attempts_and_retry_duration_must_both_be_spent() -> None:
    attempts_only = QueueConfig(max_attempts=3)
    assert not attempts_only.gives_up(2, 1e9)
    assert attempts_only.gives_up(3, 0)
    both = QueueConfig(max_attempts=3, max_retry_duration=60)
    assert not both.gives_up(3, 59) and not both.gives_up(2, 61)
    assert both.gives_up(3, 60)
    assert not QueueConfig(max_attempts=-1).gives_up(10**6, 1e9)


def test_overrides_change_named_settings_of_named_queues() -> None:
    queues = queue_configs(
        ["image-jobs", "webhook-deliveries", "extra"],
        INFRA,
        '{"*": {"min_backoff": "0.5s", "max_backoff": 4}, "image-jobs": {"max_attempts": 3}}',
    )
    assert (queues["image-jobs"].min_backoff, queues["image-jobs"].max_backoff) == (0.5, 4.0)
    assert queues["image-jobs"].max_attempts == 3
    assert queues["webhook-deliveries"].max_attempts == 25
    assert queues["image-jobs"].max_dispatches_per_second == 5  # untouched: infra/'s
    assert queues["extra"].max_attempts == 100  # not in infra/: Cloud Tasks' defaults
    assert with_overrides(queues, "") == queues


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ('{"image-jobz": {"max_attempts": 3}}', "unknown queue"),
        ('{"*": {"max_attempt": 3}}', "unknown queue setting"),
        ('{"*": {"min_backoff": "ten"}}', "duration"),
        ('{"*": {"min_backoff": "20s", "max_backoff": "10s"}}', "min_backoff"),
        ('{"*": {"max_dispatches_per_second": 0}}', "max_dispatches_per_second"),
        ('["*"]', "JSON object"),
    ],
)
def test_bad_overrides_are_refused(overrides: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        with_overrides(infra_queues(INFRA), overrides)
