"""Queue settings: read from ``infra/tasks.tf`` (so the emulator and production cannot drift).

Each ``google_cloud_tasks_queue`` resource of ``infra/`` gives one ``QueueConfig``
(its ``rate_limits`` and ``retry_config`` blocks, with ``var.*`` resolved to the
variables' defaults and ``local.*`` to the locals). ``TASKS_QUEUE_OVERRIDES``
(JSON) may then change fields for the local stack, e.g. test-sized backoffs::

    {"*": {"min_backoff": "0.5s", "max_backoff": "4s"}, "image-jobs": {"max_attempts": 5}}

``"*"`` applies to every queue, a queue's short name to that queue (applied
after ``"*"``). Durations are Terraform's strings (``"10s"``) or seconds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("emulator.cloud_tasks")

OVERRIDES_ENV = "TASKS_QUEUE_OVERRIDES"
INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
_REFERENCE = re.compile(r"^\$\{(var|local)\.([A-Za-z0-9_]+)\}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass(frozen=True)
class QueueConfig:
    """A queue's rate limits and retry config; the defaults are Cloud Tasks' own."""

    max_dispatches_per_second: float = 500.0
    max_concurrent_dispatches: int = 1000
    max_attempts: int = 100
    """-1: unlimited."""
    min_backoff: float = 0.1
    max_backoff: float = 3600.0
    max_doublings: int = 16
    max_retry_duration: float = 0.0
    """0: unlimited."""

    @property
    def max_burst_size(self) -> int:
        """The token bucket's size. Cloud Tasks picks it from the rate without saying how;
        here one second's worth of dispatches (at least 1, at most 100)."""
        return min(100, max(1, math.ceil(self.max_dispatches_per_second)))

    def retry_delay(self, retries: int) -> float:
        """Seconds before the next attempt of a task already retried ``retries`` times.

        Cloud Tasks' rule: ``min_backoff`` doubles ``max_doublings`` times, then grows
        linearly by ``min_backoff * 2**max_doublings``, capped at ``max_backoff``
        (10 s, 300 s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...).
        """
        doublings = min(retries, self.max_doublings)
        linear = 1 + max(0, retries - self.max_doublings)
        return min(self.max_backoff, self.min_backoff * 2**doublings * linear)

    def gives_up(self, attempts: int, seconds_since_first_attempt: float) -> bool:
        """True once both ``max_attempts`` and ``max_retry_duration`` (those set) are spent."""
        if self.max_attempts < 0 or attempts < self.max_attempts:
            return False
        return self.max_retry_duration <= 0 or seconds_since_first_attempt >= self.max_retry_duration

    def with_overrides(self, fields: Mapping[str, Any]) -> QueueConfig:
        known = {f.name: f.type for f in dataclasses.fields(self)}
        unknown = set(fields) - set(known)
        if unknown:
            raise ValueError(f"unknown queue setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **{name: _coerce(self, name, value) for name, value in fields.items()})

    def validate(self) -> None:
        if not 0 < self.max_dispatches_per_second <= 500:
            raise ValueError("max_dispatches_per_second must be in (0, 500]")
        if not 1 <= self.max_concurrent_dispatches <= 5000:
            raise ValueError("max_concurrent_dispatches must be in [1, 5000]")
        if self.max_attempts == 0 or self.max_attempts < -1:
            raise ValueError("max_attempts must be -1 (unlimited) or at least 1")
        if not 0 <= self.min_backoff <= self.max_backoff:
            raise ValueError("min_backoff must be between 0 and max_backoff")
        if self.max_doublings < 0 or self.max_retry_duration < 0:
            raise ValueError("max_doublings and max_retry_duration must not be negative")

    # ------------------------------------------------------------------ the API's Queue

    @classmethod
    def from_queue(cls, queue: Any) -> QueueConfig:
        """From a ``tasks_v2.Queue`` (CreateQueue): unset fields keep Cloud Tasks' defaults."""
        rate, retry = queue.rate_limits, queue.retry_config
        given: dict[str, Any] = {
            "max_dispatches_per_second": rate.max_dispatches_per_second,
            "max_concurrent_dispatches": rate.max_concurrent_dispatches,
            "max_attempts": retry.max_attempts,
            "min_backoff": retry.min_backoff.total_seconds(),
            "max_backoff": retry.max_backoff.total_seconds(),
            "max_doublings": retry.max_doublings,
            "max_retry_duration": retry.max_retry_duration.total_seconds(),
        }
        return cls().with_overrides({k: v for k, v in given.items() if v})

    def queue_fields(self) -> dict[str, Any]:
        """``rate_limits`` and ``retry_config`` of a ``tasks_v2.Queue``."""
        return {
            "rate_limits": {
                "max_dispatches_per_second": self.max_dispatches_per_second,
                "max_burst_size": self.max_burst_size,
                "max_concurrent_dispatches": self.max_concurrent_dispatches,
            },
            "retry_config": {
                "max_attempts": self.max_attempts,
                "max_retry_duration": timedelta(seconds=self.max_retry_duration),
                "min_backoff": timedelta(seconds=self.min_backoff),
                "max_backoff": timedelta(seconds=self.max_backoff),
                "max_doublings": self.max_doublings,
            },
        }


def _coerce(config: QueueConfig, name: str, value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError(f"{name}: {value!r} is not a duration like '10s'")
        value = float(match.group(1))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: {value!r} is not a number")
    return type(getattr(config, name))(value)


# --------------------------------------------------------------------------- infra/


def infra_queues(infra_dir: Path) -> dict[str, QueueConfig]:
    """``{queue short name: QueueConfig}`` of every ``google_cloud_tasks_queue`` in ``infra_dir``."""
    import hcl2

    docs = []
    for path in sorted(Path(infra_dir).glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            docs.append(hcl2.load(handle))
    scope = {
        "var": {
            _unquote(label): body.get("default")
            for doc in docs
            for block in doc.get("variable", [])
            for label, body in block.items()
        },
        "local": {key: value for doc in docs for block in doc.get("locals", []) for key, value in block.items()},
    }
    queues: dict[str, QueueConfig] = {}
    for doc in docs:
        for resource in doc.get("resource", []):
            for kind, named in resource.items():
                if _unquote(kind) != "google_cloud_tasks_queue":
                    continue
                for label, body in named.items():
                    if not label.startswith("__"):
                        name, config = _queue(body, scope)
                        queues[name] = config
    return queues


def _queue(body: Mapping[str, Any], scope: Mapping[str, Mapping[str, Any]]) -> tuple[str, QueueConfig]:
    fields: dict[str, Any] = {}
    for block_name in ("rate_limits", "retry_config"):
        for block in body.get(block_name, []):
            fields |= {k: _value(v, scope) for k, v in block.items() if not k.startswith("__")}
    config = QueueConfig().with_overrides(fields)
    config.validate()
    return str(_value(body["name"], scope)), config


def _value(raw: Any, scope: Mapping[str, Mapping[str, Any]]) -> Any:
    """A literal, or a ``${var.x}`` / ``${local.x}`` reference to one; anything else is an error."""
    if isinstance(raw, str):
        match = _REFERENCE.match(raw)
        if match:
            kind, key = match.groups()
            if key not in scope[kind]:
                raise ValueError(f"infra/: {kind}.{key} is not defined (or has no default)")
            return _value(scope[kind][key], scope)
        if raw.startswith("${"):
            raise ValueError(f"infra/: cannot evaluate {raw!r} for the emulator")
        return _unquote(raw)
    return raw


def _unquote(text: str) -> Any:
    return json.loads(text) if len(text) >= 2 and text[0] == text[-1] == '"' else text


def with_overrides(queues: Mapping[str, QueueConfig], overrides_json: str) -> dict[str, QueueConfig]:
    """``queues`` with ``TASKS_QUEUE_OVERRIDES`` applied (an empty string changes nothing)."""
    overrides = json.loads(overrides_json) if overrides_json.strip() else {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ValueError(f"{OVERRIDES_ENV} must be a JSON object of objects")
    unknown = set(overrides) - {"*", *queues}
    if unknown:
        raise ValueError(f"{OVERRIDES_ENV} names unknown queue(s) {sorted(unknown)}; queues: {sorted(queues)}")
    result = {}
    for name, config in queues.items():
        config = config.with_overrides(overrides.get("*", {})).with_overrides(overrides.get(name, {}))
        config.validate()
        result[name] = config
    return result


def queue_configs(names: list[str], infra_dir: Path, overrides_json: str) -> dict[str, QueueConfig]:
    """The settings of each named queue: infra/'s (Cloud Tasks' defaults if it has none), then the overrides."""
    infra = infra_queues(infra_dir)
    for name in names:
        if name not in infra:
            log.warning("queue %s is not in %s: it gets Cloud Tasks' default settings", name, infra_dir)
    return with_overrides({name: infra.get(name, QueueConfig()) for name in names}, overrides_json)
