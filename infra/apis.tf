# APIs the service needs. They are never disabled on destroy: other workloads in
# the project may use them too.

locals {
  apis = concat(
    [
      "cloudresourcemanager.googleapis.com",
      "iam.googleapis.com",
      "iamcredentials.googleapis.com", # signBlob for V4 signed URLs
      "cloudfunctions.googleapis.com",
      "run.googleapis.com",
      "cloudbuild.googleapis.com",
      "artifactregistry.googleapis.com",
      "eventarc.googleapis.com",
      "pubsub.googleapis.com", # Eventarc transport
      "firestore.googleapis.com",
      "firebaserules.googleapis.com", # Firestore security rules (firestore.rules)
      "cloudtasks.googleapis.com",
      "cloudscheduler.googleapis.com", # runs the sweeper every 5 minutes
      "secretmanager.googleapis.com",
      "storage.googleapis.com",
      "logging.googleapis.com",
    ],
    var.use_vertex_ai ? ["aiplatform.googleapis.com"] : ["generativelanguage.googleapis.com"],
  )
}

resource "google_project_service" "this" {
  for_each = toset(local.apis)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}
