terraform {
  # Validations that read other variables need >= 1.9; developed against 1.11.
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }

  # State is local by default. deploy.sh writes a `backend_override.tf` with a
  # `backend "gcs" {}` block when TF_STATE_BUCKET is set (see README.md).
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}
