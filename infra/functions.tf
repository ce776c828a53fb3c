# The five Cloud Functions (2nd gen). All are built from the same source
# archive (functions/, entry points in functions/main.py, entry point = key
# below); each runs as its own service account. local.functions holds what
# differs between them, the resource below what they share and the defaults
# (cpu "1", min_instances 0, ingress var.private_ingress, environment
# local.env_common plus `env`, no secrets, no event trigger).

locals {
  functions = {
    # Public HTTP API (API-key auth in the application).
    api = {
      description = "Public REST API: accepts image jobs, serves job status and image URLs."
      # 250 open streams cost a Firestore listener (2 threads) and a gunicorn
      # thread each: measured against the emulator, 250 listeners add ~23 MiB.
      memory          = "512Mi"
      concurrency     = local.api_concurrency
      timeout_seconds = local.api_timeout_seconds
      min_instances   = var.api_min_instances
      max_instances   = var.api_max_instances
      # Public endpoint by design; see the invoker grants in iam.tf (allUsers).
      ingress         = "ALLOW_ALL"
      service_account = google_service_account.api.email
      env             = local.env_api
    }

    # Runs one image job per Cloud Task (calls Gemini, post-processes the
    # images with Pillow, stores them in the images bucket).
    worker = {
      description = "Private image generation worker, invoked by the image-jobs Cloud Tasks queue."
      memory      = var.worker_memory
      cpu         = var.worker_cpu
      concurrency = 4
      # Below the 10 min default dispatch deadline of Cloud Tasks HTTP tasks.
      timeout_seconds = 540
      max_instances   = var.worker_max_instances
      service_account = google_service_account.worker.email
      # No key in Vertex AI mode (Application Default Credentials).
      secrets = { GOOGLE_API_KEY = var.use_vertex_ai ? null : local.gemini_secret_id }
    }

    # POSTs one signed webhook per Cloud Task.
    webhook_delivery = {
      description = "Private webhook sender, invoked by the webhook-deliveries Cloud Tasks queue."
      memory      = "256Mi"
      # Several outbound HTTP calls in flight per instance.
      concurrency     = 10
      timeout_seconds = 60
      max_instances   = var.webhook_max_instances
      service_account = google_service_account.webhook_delivery.email
      secrets         = { WEBHOOK_SECRET = google_secret_manager_secret.webhook.secret_id }
    }

    # CloudEvent function on every write of image_jobs/{jobId}; enqueues
    # webhook deliveries when a job reaches a terminal state. Firestore
    # delivers the event data as application/protobuf (DocumentEventData).
    webhook_trigger = {
      description     = "Firestore-triggered fan-out of job webhooks to the webhook-deliveries queue."
      memory          = "256Mi"
      concurrency     = 10
      timeout_seconds = 60
      max_instances   = var.webhook_max_instances
      service_account = google_service_account.webhook_trigger.email
      job_writes      = true
    }

    # POSTed by Cloud Scheduler every 5 minutes (scheduler.tf); queues the
    # jobs the api stored but could not queue, and re-queues or fails those
    # the queue gave up on (a worker killed on its last attempt). One
    # instance: runs never need to overlap (and are safe if they do:
    # transactions).
    sweeper = {
      description = "Scheduled sweeper: re-queues or fails image jobs left behind."
      memory      = "256Mi"
      concurrency = 1
      # A run handles at most a few hundred jobs, one transaction and task each.
      timeout_seconds = local.sweeper_timeout_seconds
      max_instances   = 1
      service_account = google_service_account.sweeper.email
      env             = local.env_sweeper
    }
  }
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:Ingress is ALLOW_ALL for the api, the public REST endpoint of the service (allUsers invoker by design; callers are authenticated by the application with API keys), and var.private_ingress (default ALLOW_ALL) for the others: Cloud Tasks/Eventarc/Cloud Scheduler call the public run.app URL and access is enforced by Cloud Run IAM (only the OIDC identity holds run.invoker); ALLOW_INTERNAL_ONLY can be selected as extra hardening.
  for_each = local.functions

  project     = var.project_id
  name        = local.function_names[each.key]
  location    = var.region
  description = each.value.description

  build_config {
    runtime           = local.runtime
    entry_point       = each.key
    service_account   = google_service_account.builder.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory = each.value.memory
    # A full vCPU is required for more than one concurrent request per instance.
    available_cpu                    = try(each.value.cpu, "1")
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout_seconds
    min_instance_count               = try(each.value.min_instances, 0)
    max_instance_count               = each.value.max_instances
    # The private functions: Cloud Tasks, Eventarc and Cloud Scheduler reach
    # them on their public run.app URL. Access is enforced by Cloud Run IAM:
    # only the OIDC identity of iam.tf's local.invokers holds run.invoker
    # (token checked by Cloud Run before the code runs). Traffic from those of
    # the same project also counts as internal, so private_ingress =
    # "ALLOW_INTERNAL_ONLY" is a supported hardening option.
    ingress_settings               = try(each.value.ingress, var.private_ingress)
    all_traffic_on_latest_revision = true
    service_account_email          = each.value.service_account
    environment_variables          = merge(local.env_common, try(each.value.env, {}))

    # Environment variable name => Secret Manager secret id (null: none).
    dynamic "secret_environment_variables" {
      for_each = { for key, secret in try(each.value.secrets, {}) : key => secret if secret != null }
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = try(each.value.job_writes, false) ? [each.value.service_account] : []
    content {
      # Firestore events are emitted in the database's location.
      trigger_region        = local.firestore_location
      event_type            = "google.cloud.firestore.document.v1.written"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = event_trigger.value

      event_filters {
        attribute = "database"
        value     = local.firestore_database
      }

      event_filters {
        attribute = "document"
        value     = "${local.jobs_collection}/{jobId}"
        operator  = "match-path-pattern"
      }
    }
  }

  # What the builds and the first start of any function need (a function
  # deploy fails when its service account cannot yet read its secret, its
  # queue or its trigger's events); the union for all five.
  depends_on = [
    google_project_service.this,
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_source_read,
    google_artifact_registry_repository_iam_member.builder_push,
    google_project_iam_member.datastore_user,
    google_project_iam_member.worker_vertex,
    google_secret_manager_secret.gemini_api_key,
    google_secret_manager_secret_iam_member.worker_gemini_key,
    google_storage_bucket_iam_member.worker_images_write,
    google_secret_manager_secret_iam_member.webhook_delivery_secret,
    google_project_iam_member.webhook_trigger_event_receiver,
    google_cloud_tasks_queue_iam_member.enqueue,
    google_service_account_iam_member.act_as_tasks_invoker,
  ]
}

# The functions were one resource each until local.functions: these keep
# their state. Remove them once every deployment has applied them.
moved {
  from = google_cloudfunctions2_function.api
  to   = google_cloudfunctions2_function.this["api"]
}

moved {
  from = google_cloudfunctions2_function.worker
  to   = google_cloudfunctions2_function.this["worker"]
}

moved {
  from = google_cloudfunctions2_function.webhook_delivery
  to   = google_cloudfunctions2_function.this["webhook_delivery"]
}

moved {
  from = google_cloudfunctions2_function.webhook_trigger
  to   = google_cloudfunctions2_function.this["webhook_trigger"]
}

moved {
  from = google_cloudfunctions2_function.sweeper
  to   = google_cloudfunctions2_function.this["sweeper"]
}
