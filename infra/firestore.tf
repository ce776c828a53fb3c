# Firestore (Native mode) "(default)" database, TTL policies, the composite
# indexes of infra/firestore.indexes.json (see firestore_indexes.tf) and the
# security rules.

resource "google_firestore_database" "default" {
  count = var.create_firestore_database ? 1 : 0

  project                           = var.project_id
  name                              = "(default)"
  location_id                       = local.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # `terraform destroy` leaves the database (and its data) in place.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.this]
}

# TTL policies: Firestore deletes documents (typically within 24h) once the
# timestamp in `expires_at` has passed. Single-field indexes on the TTL field are
# disabled (`index_config {}`): nothing queries it and indexing a monotonically
# increasing timestamp causes write hot-spots.
resource "google_firestore_field" "idempotency_keys_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = local.idempotency_collection
  field      = local.ttl_field

  ttl_config {}
  index_config {}
}

resource "google_firestore_field" "image_jobs_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = local.jobs_collection
  field      = local.ttl_field

  ttl_config {}
  index_config {}

  # Field-config operations on one database are serialised.
  depends_on = [google_firestore_field.idempotency_keys_ttl]
}

# Webhook delivery records (image_jobs/{id}/webhook_deliveries/{event}) copy
# their job's expires_at; a TTL policy applies to the whole collection group.
resource "google_firestore_field" "webhook_deliveries_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "webhook_deliveries"
  field      = local.ttl_field

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_field.image_jobs_ttl]
}

# Composite indexes: one per entry of firestore.indexes.json (which queries
# need which: tests/infra/test_terraform.py). Adding an index touches the JSON
# only. Firestore appends __name__ (in the last field's direction) itself.
resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = local.firestore_database
  collection  = each.value.collectionGroup
  query_scope = each.value.queryScope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

# The indexes were one resource each until the JSON drove them: these keep
# their state (no index is deleted and rebuilt). Remove them once every
# deployment has applied them.
moved {
  from = google_firestore_index.jobs_by_owner_created_asc
  to   = google_firestore_index.composite["image_jobs:owner_asc,created_at_asc"]
}

moved {
  from = google_firestore_index.jobs_by_owner_created
  to   = google_firestore_index.composite["image_jobs:owner_asc,created_at_desc"]
}

moved {
  from = google_firestore_index.jobs_by_owner_status_created
  to   = google_firestore_index.composite["image_jobs:owner_asc,status_asc,created_at_desc"]
}

moved {
  from = google_firestore_index.jobs_usage_by_owner_day
  to   = google_firestore_index.composite["image_jobs:owner_asc,completed_day_asc,usage_cost_usd_asc,usage_images_asc,usage_input_tokens_asc,usage_output_tokens_asc,usage_thinking_tokens_asc"]
}

moved {
  from = google_firestore_index.jobs_usage_by_key_day
  to   = google_firestore_index.composite["image_jobs:api_key_asc,completed_day_asc,usage_cost_usd_asc"]
}

moved {
  from = google_firestore_index.jobs_unqueued
  to   = google_firestore_index.composite["image_jobs:status_asc,queued_at_asc,created_at_asc"]
}

moved {
  from = google_firestore_index.jobs_quiet
  to   = google_firestore_index.composite["image_jobs:status_asc,updated_at_asc"]
}

# Security rules for client SDKs (Firebase frontends reading their own jobs in
# realtime). They govern only requests made with Firebase credentials; the
# functions use IAM and are not affected. A new ruleset is created for every
# change of firestore.rules, released under "cloud.firestore" (the (default)
# database), and the previous one deleted once the release points away from it
# (create_before_destroy: a ruleset in use by a release cannot be deleted).
resource "google_firebaserules_ruleset" "firestore" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.this, google_firestore_database.default]
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"
}

