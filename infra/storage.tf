# ---------------------------------------------------------------------------
# Generated images.
# ---------------------------------------------------------------------------

resource "google_storage_bucket" "images" {
  #checkov:skip=CKV_GCP_62:Usage/storage access logs are a legacy feature; object access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com) instead of a second log bucket.
  #checkov:skip=CKV_GCP_78:Versioning is intentionally off: generated images are immutable, written once, and expired by the lifecycle rule; noncurrent versions would only keep deleted images (and their cost) around.
  name                        = "${var.project_id}-${var.name_prefix}-images"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  # Private unless the operator explicitly opted into public image URLs.
  public_access_prevention = var.public_image_urls ? "inherited" : "enforced"
  force_destroy            = var.force_destroy_images

  versioning {
    enabled = false
  }

  lifecycle_rule {
    condition {
      age = var.image_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Browsers may load the images (signed or public URLs) directly.
  cors {
    origin          = var.cors_origins
    method          = ["GET", "HEAD"]
    response_header = ["Content-Type", "Content-Length", "ETag", "Cache-Control"]
    max_age_seconds = 3600
  }

  depends_on = [google_project_service.this]
}

# Only with public_image_urls = true: anyone can read an image whose URL they
# have. legacyObjectReader is storage.objects.get only; objectViewer would
# also let anyone list the bucket (every job's images).
resource "google_storage_bucket_iam_member" "images_public_read" {
  #checkov:skip=CKV_GCP_28:Opt-in only (public_image_urls = true, default false): the operator chose plain public image URLs instead of signed URLs; object names are unguessable UUIDs and expire after image_retention_days.
  count = var.public_image_urls ? 1 : 0

  bucket = google_storage_bucket.images.name
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"
}

# ---------------------------------------------------------------------------
# Function source archives (written by Terraform, read by Cloud Build).
# ---------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Only holds deployment zips uploaded by Terraform; access is covered by Cloud Audit Logs, a dedicated access-log bucket is not warranted.
  #checkov:skip=CKV_GCP_78:Objects are content addressed (named by MD5) so every deployed revision keeps its own object; versioning adds nothing.
  name                        = "${var.project_id}-${var.name_prefix}-fn-source"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only holds reproducible build inputs.
  force_destroy = true

  versioning {
    enabled = false
  }

  depends_on = [google_project_service.this]
}

# ---------------------------------------------------------------------------
# Container images built from the source by Cloud Build (instead of the
# unmanaged default "gcf-artifacts" repository), with a cleanup policy so
# image storage does not grow with every deploy. The 10 most recent images per
# function are kept so `gcloud run services update-traffic` can roll back.
# ---------------------------------------------------------------------------

resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Images only contain the public application code and its PyPI dependencies; Google-managed encryption is sufficient and CMEK would add a KMS key to manage and pay for.
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Container images of the ${var.name_prefix} Cloud Functions (built by Cloud Build)."
  format        = "DOCKER"

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-older-than-30d"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}
