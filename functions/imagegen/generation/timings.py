"""Where one job's time went: the ``metadata.timings`` of a completed job.

Phases, in seconds, which add up to ``total`` (creation to completion):

* ``queued``: from the job's creation to the start of the delivery that completed it;
* ``input_fetch``: downloading and preparing ``input_image_url``;
* ``model``: the model calls;
* ``post_processing``: Pillow resizing and encoding;
* ``storage``: Firestore writes (lease, statuses, image records) and Cloud Storage uploads.

The worker's own time is cut into consecutive laps, so nothing falls between
two phases. Images are made in parallel: the parallel stretch is charged along
its critical path, the image that finished last (its model and post-processing
time; the rest of the stretch, uploads and record writes, is storage).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

Phase = Literal["queued", "input_fetch", "model", "post_processing", "storage"]
PHASES: tuple[Phase, ...] = ("queued", "input_fetch", "model", "post_processing", "storage")


class ImageTimer:
    """Model and post-processing time of one image, measured on its own thread."""

    def __init__(self) -> None:
        self.seconds: dict[Phase, float] = {"model": 0.0, "post_processing": 0.0}
        self.finished = 0.0

    def done(self) -> None:
        self.finished = time.monotonic()

    @contextlib.contextmanager
    def phase(self, name: Literal["model", "post_processing"]) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] += time.monotonic() - started


class JobTimings:
    """Laps of one worker delivery, from the moment it was received."""

    def __init__(self) -> None:
        self._received_wall = time.time()
        self._mark = time.monotonic()
        self._seconds: dict[Phase, float] = dict.fromkeys(PHASES, 0.0)
        self._images: list[ImageTimer] = []
        self._lock = threading.Lock()

    def queued_since(self, created_at: datetime) -> None:
        """The wait between the job's creation and this delivery's arrival."""
        self._seconds["queued"] = max(0.0, self._received_wall - created_at.timestamp())

    def lap(self, phase: Phase) -> None:
        """Charge the time since the previous lap to ``phase``."""
        now = time.monotonic()
        self._seconds[phase] += now - self._mark
        self._mark = now

    def image(self) -> ImageTimer:
        """A timer for one image of the parallel stretch (thread-safe)."""
        timer = ImageTimer()
        with self._lock:
            self._images.append(timer)
        return timer

    def end_parallel(self) -> None:
        """Charge the parallel stretch along the image that finished last."""
        now = time.monotonic()
        stretch = now - self._mark
        done = [timer for timer in self._images if timer.finished]
        if done:
            last = max(done, key=lambda timer: timer.finished)
            for phase in ("model", "post_processing"):
                share = min(last.seconds[phase], stretch)
                self._seconds[phase] += share
                stretch -= share
        self._seconds["storage"] += stretch
        self._images.clear()
        self._mark = now

    def as_metadata(self) -> dict[str, float]:
        """Every phase and ``total``, rounded to the millisecond."""
        seconds = {phase: round(value, 3) for phase, value in self._seconds.items()}
        return seconds | {"total": round(sum(self._seconds.values()), 3)}
