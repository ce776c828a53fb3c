output "api_url" {
  description = "URL of the public API (api function)."
  value       = google_cloudfunctions2_function.this["api"].service_config[0].uri
}

output "public_base_url" {
  description = "Base URL used in links returned by the API and in webhook payloads (PUBLIC_BASE_URL)."
  value       = local.public_base_url
}

output "worker_url" {
  description = "URL of the private worker function: target and OIDC audience of the image-jobs tasks (WORKER_URL)."
  value       = local.function_urls.worker
}

output "webhook_delivery_url" {
  description = "URL of the private webhook_delivery function: target and OIDC audience of the webhook-deliveries tasks (WEBHOOK_DELIVERY_URL)."
  value       = local.function_urls.webhook_delivery
}

output "images_bucket" {
  description = "Bucket holding the generated images."
  value       = google_storage_bucket.images.name
}

output "jobs_queue" {
  description = "Full resource name of the image jobs Cloud Tasks queue."
  value       = google_cloud_tasks_queue.jobs.id
}

output "webhook_queue" {
  description = "Full resource name of the webhook deliveries Cloud Tasks queue."
  value       = google_cloud_tasks_queue.webhooks.id
}

output "tasks_service_account" {
  description = "Service account whose OIDC token Cloud Tasks sends to the private functions."
  value       = google_service_account.tasks_invoker.email
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value = {
    api              = google_service_account.api.email
    worker           = google_service_account.worker.email
    webhook_trigger  = google_service_account.webhook_trigger.email
    webhook_delivery = google_service_account.webhook_delivery.email
    sweeper          = google_service_account.sweeper.email
  }
}

output "secret_commands" {
  description = "Commands that add the secret values (Terraform never stores them)."
  value = join("\n", compact([
    var.use_vertex_ai ? "" : "printf '%s' \"$GEMINI_API_KEY\" | gcloud secrets versions add ${local.gemini_secret_id} --project=${var.project_id} --data-file=-",
    "openssl rand -hex 32 | tr -d '\\n' | gcloud secrets versions add ${local.webhook_secret_id} --project=${var.project_id} --data-file=-",
  ]))
}

output "sweeper_url" {
  description = "URL of the private sweeper function (Cloud Scheduler target and OIDC audience, SWEEPER_URL)."
  value       = local.function_urls.sweeper
}
