# Cloud Scheduler runs the sweeper (functions.tf) every 5 minutes: POST, empty
# body, OIDC token of the tasks-invoker service account with the sweeper's URL
# as audience (checked by Cloud Run IAM, then by the sweeper like a task's).
# A missed or failed run is not retried: the next one is 5 minutes away.

resource "google_cloud_scheduler_job" "sweeper" {
  project     = var.project_id
  region      = var.region
  name        = local.function_names.sweeper
  description = "Runs the ${local.function_names.sweeper} function: re-queues or fails image jobs left behind."
  schedule    = var.sweeper_schedule
  time_zone   = "Etc/UTC"
  # Longer than the function's timeout, so Scheduler never abandons a run
  # that still works.
  attempt_deadline = "${local.sweeper_timeout_seconds + 30}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = local.function_urls.sweeper

    oidc_token {
      service_account_email = google_service_account.tasks_invoker.email
      audience              = local.function_urls.sweeper
    }
  }

  depends_on = [
    google_project_service.this,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}
