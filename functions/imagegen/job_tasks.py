"""A job's generation task: created at most once per name, recorded on the job.

The job document is written first and is the source of truth (an outbox):
``queued_at`` stays None until its Cloud Task exists. When the API cannot
create the task (Tasks unreachable, retries run out, the instance dies in
between), the job still stands and the sweeper queues it later. Tasks are
named (after the job, or ``<job>-sweep<n>``), so a task created twice is
refused by Cloud Tasks itself (``AlreadyExists`` counts as success) and a
job never runs twice because of it; a duplicate delivery would still meet
the lease.
"""

from __future__ import annotations

from imagegen import job_store, task_queue
from imagegen.config import load_settings


def queue(job_id: str, task_id: str = "") -> None:
    """Create the job's task (named ``task_id``, default the job id), then mark it queued.

    Raises ``task_queue.QueueUnavailable`` (or a Firestore error) when either fails.
    """
    settings = load_settings()
    task_queue.enqueue_json(
        settings.tasks_queue, settings.worker_url, {"job_id": job_id}, task_id=task_id or job_id
    )
    job_store.mark_queued(job_id)
