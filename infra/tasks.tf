# Cloud Tasks queues. Tasks are created by the code as HTTP tasks with an OIDC
# token for the tasks-invoker service account (TASKS_SERVICE_ACCOUNT) and the
# target function URL as audience.

# api -> worker: one task per image job.
resource "google_cloud_tasks_queue" "jobs" {
  project  = var.project_id
  name     = local.jobs_queue_name
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.jobs_queue_max_dispatches_per_second
    max_concurrent_dispatches = var.jobs_queue_max_concurrent_dispatches
  }

  # 10 attempts, 60s -> 120s -> 240s, then every 300s (~40 min). min_backoff
  # is part of the time budget (tests/infra/test_time_budget.py): the worker's
  # timeout (540s) < JOB_LEASE_SECONDS (570s) < timeout + min_backoff, so the
  # attempt after a timed-out one finds the lease expired and takes over.
  # Gemini quota errors (429) come back through this backoff too.
  retry_config {
    max_attempts  = local.jobs_queue_max_attempts
    min_backoff   = "60s"
    max_backoff   = "300s"
    max_doublings = 4
  }

  stackdriver_logging_config {
    sampling_ratio = var.tasks_logging_sampling_ratio
  }

  depends_on = [google_project_service.this]
}

# webhook_trigger -> webhook_delivery: one task per webhook delivery, retried
# for up to a day so a receiver can be down for hours without losing events.
resource "google_cloud_tasks_queue" "webhooks" {
  project  = var.project_id
  name     = local.webhook_queue_name
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.webhook_queue_max_dispatches_per_second
    max_concurrent_dispatches = var.webhook_queue_max_concurrent_dispatches
  }

  # Up to 25 attempts within 24h: 10s doubling to 3600s, then hourly.
  retry_config {
    max_attempts       = 25
    min_backoff        = "10s"
    max_backoff        = "3600s"
    max_doublings      = 9
    max_retry_duration = "86400s"
  }

  stackdriver_logging_config {
    sampling_ratio = var.tasks_logging_sampling_ratio
  }

  depends_on = [google_project_service.this]
}

check "worker_capacity" {
  assert {
    condition     = var.jobs_queue_max_concurrent_dispatches <= var.worker_max_instances * 4
    error_message = "jobs_queue_max_concurrent_dispatches exceeds worker_max_instances x 4 (worker concurrency): dispatches beyond that are rejected with 429 and retried with backoff. Raise worker_max_instances or lower the queue concurrency."
  }
}
