"""Per-caller limit on job creation, without a counter document.

The jobs an owner created in the last minute are counted with one Firestore
``count()`` aggregation on the ``owner, created_at`` index: no shared counter
document to contend on, nothing extra to write. Concurrent creations can
overshoot by the number of requests in flight, a fair trade for a soft limit.
The Gemini call rate is bounded separately, by the jobs queue's dispatch rate.
"""

from __future__ import annotations

import math
from datetime import timedelta

from imagegen import job_store
from imagegen.config import load_settings

WINDOW = timedelta(minutes=1)


def retry_after(owner: str) -> int:
    """Seconds before ``owner`` may create another job; 0 when allowed now."""
    limit = load_settings().rate_limit_per_minute
    if limit <= 0:
        return 0
    now = job_store.utcnow()
    since = now - WINDOW
    if job_store.count_created_since(owner, since) < limit:
        return 0
    oldest = job_store.oldest_created_since(owner, since) or now
    return max(1, math.ceil((oldest + WINDOW - now).total_seconds()))
