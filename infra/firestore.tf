# Firestore (Native mode) "(default)" database, TTL policies and the composite
# indexes used by the job listing. infra/firestore.indexes.json holds the same
# indexes for the Firebase CLI / emulator.

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

# Rate limit: count(where owner == X and created_at > now - 1 min), and the
# oldest of those (order by created_at asc) for Retry-After.
resource "google_firestore_index" "jobs_by_owner_created_asc" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# GET /api/images/jobs: where owner == X order by created_at desc
resource "google_firestore_index" "jobs_by_owner_created" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# GET /api/images/jobs?status=...: where owner == X and status == Y order by created_at desc
resource "google_firestore_index" "jobs_by_owner_status_created" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# GET /api/usage: per day, count and sum(usage_*) where owner == X and completed_day == D.
# sum() is computed by scanning an index, so the summed fields are in it.
resource "google_firestore_index" "jobs_usage_by_owner_day" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }

  fields {
    field_path = "completed_day"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_cost_usd"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_images"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_input_tokens"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_output_tokens"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_thinking_tokens"
    order      = "ASCENDING"
  }
}

# Per-key monthly budget: sum(usage_cost_usd) where api_key == K and completed_day >= first of month.
resource "google_firestore_index" "jobs_usage_by_key_day" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "api_key"
    order      = "ASCENDING"
  }

  fields {
    field_path = "completed_day"
    order      = "ASCENDING"
  }

  fields {
    field_path = "usage_cost_usd"
    order      = "ASCENDING"
  }
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

# Sweeper: PENDING jobs whose task was never created,
# where status == PENDING and queued_at == null and created_at < T
resource "google_firestore_index" "jobs_unqueued" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "queued_at"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_at"
    order      = "ASCENDING"
  }
}

# Sweeper: unfinished jobs nothing wrote to for a long time,
# where status in [PENDING, INITIALIZING, GENERATING, SAVING] and updated_at < T
resource "google_firestore_index" "jobs_quiet" {
  project     = var.project_id
  database    = local.firestore_database
  collection  = local.jobs_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "updated_at"
    order      = "ASCENDING"
  }
}
