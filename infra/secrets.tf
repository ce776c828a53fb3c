# Secret containers only. Secret *values* are never managed by Terraform (they
# would be stored in plain text in the state); add them with
#   gcloud secrets versions add gemini-api-key --data-file=-
#   gcloud secrets versions add webhook-secret --data-file=-
# (deploy.sh does this / prints the commands). Functions read version "latest",
# which is resolved when an instance starts.

resource "google_secret_manager_secret" "gemini_api_key" {
  count = var.use_vertex_ai ? 0 : 1

  project   = var.project_id
  secret_id = local.gemini_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret" "webhook" {
  project   = var.project_id
  secret_id = local.webhook_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}
