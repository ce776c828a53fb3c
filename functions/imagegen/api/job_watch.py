"""The successive states of one job document, as a Firestore listener reports them.

Shared by the event stream and the long-poll: both wait on changes pushed by
one ``on_snapshot`` listener on the job's document (one Listen stream per
open request), never on a loop of reads.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from imagegen import job_store


@dataclass(frozen=True)
class JobState:
    """One version of the job document; ``version`` is its update time in µs since the epoch.

    Firestore assigns the update time at commit, so it increases with every
    write of the document and is the same whichever instance reads it.
    """

    version: int
    job: dict[str, Any]


class WatchFailed(TimeoutError):
    """The listener did not report the document's first state in time (an OSError: 503)."""


class JobWatch:
    """Context manager: ``next(timeout)`` returns each new state of the job, in order.

    ``None`` from ``next`` means the document does not exist (or was deleted);
    ``TIMEOUT`` that nothing changed within ``timeout`` seconds.
    """

    TIMEOUT: Any = object()

    def __init__(self, job_id: str) -> None:
        self._changes: queue.SimpleQueue[JobState | None] = queue.SimpleQueue()
        self._watch = job_store.watch_job(job_id, self._on_change)

    def _on_change(self, snapshot: Any) -> None:
        if snapshot is None or not snapshot.exists:
            self._changes.put(None)
            return
        stamp = snapshot.update_time.timestamp_pb()
        self._changes.put(JobState(stamp.seconds * 1_000_000 + stamp.nanos // 1000, snapshot.to_dict()))

    def first(self, timeout: float = 10.0) -> JobState | None:
        """The document's state when the listener started; ``WatchFailed`` if it never comes."""
        state = self.next(timeout)
        if state is JobWatch.TIMEOUT:
            raise WatchFailed("no first snapshot from the Firestore listener")
        return state

    def next(self, timeout: float) -> Any:
        """The next state (``JobState`` or ``None``), or ``TIMEOUT`` after ``timeout`` s."""
        try:
            return self._changes.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return JobWatch.TIMEOUT

    @property
    def active(self) -> bool:
        """False once the listener has stopped (a non-retryable error)."""
        return bool(self._watch.is_active)

    def close(self) -> None:
        self._watch.unsubscribe()

    def __enter__(self) -> JobWatch:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()


def remaining(deadline: float) -> float:
    """Seconds left until the ``time.monotonic()`` ``deadline`` (never negative)."""
    return max(deadline - time.monotonic(), 0.0)
