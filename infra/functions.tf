# The four Cloud Functions (2nd gen). All are built from the same source
# archive (functions/, entry points in functions/main.py); each runs as its
# own service account.

# ---------------------------------------------------------------------------
# api: public HTTP API (API-key auth in the application).
# ---------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "api" {
  #checkov:skip=CKV_GCP_124:The api is the public REST endpoint of the service (ingress ALLOW_ALL + allUsers invoker by design); callers are authenticated by the application with API keys.
  project     = var.project_id
  name        = local.function_names.api
  location    = var.region
  description = "Public REST API: accepts image jobs, serves job status and image URLs."

  build_config {
    runtime           = local.runtime
    entry_point       = "api"
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
    # 250 open streams cost a Firestore listener (2 threads) and a gunicorn
    # thread each: measured against the emulator, 250 listeners add ~23 MiB.
    available_memory = "512Mi"
    # A full vCPU is required for more than one concurrent request per instance.
    available_cpu                    = "1"
    max_instance_request_concurrency = local.api_concurrency
    timeout_seconds                  = local.api_timeout_seconds
    min_instance_count               = var.api_min_instances
    max_instance_count               = var.api_max_instances
    # Public endpoint by design; see google_cloud_run_v2_service_iam_member.api_public.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.api.email
    environment_variables          = merge(local.env_common, local.env_api)
  }

  depends_on = [
    google_project_service.this,
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_source_read,
    google_artifact_registry_repository_iam_member.builder_push,
    google_project_iam_member.datastore_user,
  ]
}

# ---------------------------------------------------------------------------
# worker: runs one image job per Cloud Task (calls Gemini, post-processes the
# images with Pillow, stores them in the images bucket).
# ---------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "worker" {
  #checkov:skip=CKV_GCP_124:Ingress is var.private_ingress (default ALLOW_ALL): Cloud Tasks/Eventarc call the public run.app URL and access is enforced by Cloud Run IAM (only the OIDC identity holds run.invoker); ALLOW_INTERNAL_ONLY can be selected as extra hardening.
  project     = var.project_id
  name        = local.function_names.worker
  location    = var.region
  description = "Private image generation worker, invoked by the image-jobs Cloud Tasks queue."

  build_config {
    runtime           = local.runtime
    entry_point       = "worker"
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
    available_memory                 = var.worker_memory
    available_cpu                    = var.worker_cpu
    max_instance_request_concurrency = 4
    # Below the 10 min default dispatch deadline of Cloud Tasks HTTP tasks.
    timeout_seconds    = 540
    min_instance_count = 0
    max_instance_count = var.worker_max_instances
    # Cloud Tasks reaches the function on its public run.app URL. Access is
    # enforced by Cloud Run IAM: only the tasks-invoker service account holds
    # roles/run.invoker (OIDC token checked by Cloud Run before the code runs).
    # Cloud Tasks of the same project also counts as internal traffic, so
    # private_ingress = "ALLOW_INTERNAL_ONLY" is a supported hardening option.
    ingress_settings               = var.private_ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.worker.email
    environment_variables          = local.env_common

    dynamic "secret_environment_variables" {
      for_each = var.use_vertex_ai ? [] : [local.gemini_secret_id]
      content {
        key        = "GOOGLE_API_KEY"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

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
  ]
}

# ---------------------------------------------------------------------------
# webhook_delivery: POSTs one signed webhook per Cloud Task.
# ---------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "webhook_delivery" {
  #checkov:skip=CKV_GCP_124:Ingress is var.private_ingress (default ALLOW_ALL): Cloud Tasks/Eventarc call the public run.app URL and access is enforced by Cloud Run IAM (only the OIDC identity holds run.invoker); ALLOW_INTERNAL_ONLY can be selected as extra hardening.
  project     = var.project_id
  name        = local.function_names.webhook_delivery
  location    = var.region
  description = "Private webhook sender, invoked by the webhook-deliveries Cloud Tasks queue."

  build_config {
    runtime           = local.runtime
    entry_point       = "webhook_delivery"
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
    available_memory = "256Mi"
    # One vCPU so an instance can keep several outbound HTTP calls in flight.
    available_cpu                    = "1"
    max_instance_request_concurrency = 10
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = var.webhook_max_instances
    # Same model as the worker: Cloud Tasks OIDC + Cloud Run IAM.
    ingress_settings               = var.private_ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.webhook_delivery.email
    environment_variables          = local.env_common

    secret_environment_variables {
      key        = "WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    google_project_service.this,
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_source_read,
    google_artifact_registry_repository_iam_member.builder_push,
    google_project_iam_member.datastore_user,
    google_secret_manager_secret_iam_member.webhook_delivery_secret,
  ]
}

# ---------------------------------------------------------------------------
# webhook_trigger: CloudEvent function on every write of image_jobs/{jobId};
# enqueues webhook deliveries when a job reaches a terminal state. Firestore
# delivers the event data as application/protobuf (DocumentEventData).
# ---------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "webhook_trigger" {
  #checkov:skip=CKV_GCP_124:Ingress is var.private_ingress (default ALLOW_ALL): Cloud Tasks/Eventarc call the public run.app URL and access is enforced by Cloud Run IAM (only the OIDC identity holds run.invoker); ALLOW_INTERNAL_ONLY can be selected as extra hardening.
  project     = var.project_id
  name        = local.function_names.webhook_trigger
  location    = var.region
  description = "Firestore-triggered fan-out of job webhooks to the webhook-deliveries queue."

  build_config {
    runtime           = local.runtime
    entry_point       = "webhook_trigger"
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
    available_memory                 = "256Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 10
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = var.webhook_max_instances
    # Only Eventarc pushes to this function, authenticated with the trigger
    # service account's OIDC token (run.invoker granted in iam.tf).
    ingress_settings               = var.private_ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.webhook_trigger.email
    environment_variables          = local.env_common
  }

  event_trigger {
    # Firestore events are emitted in the database's location.
    trigger_region        = local.firestore_location
    event_type            = "google.cloud.firestore.document.v1.written"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.webhook_trigger.email

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

  depends_on = [
    google_project_service.this,
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_source_read,
    google_artifact_registry_repository_iam_member.builder_push,
    google_project_iam_member.datastore_user,
    google_project_iam_member.webhook_trigger_event_receiver,
    google_cloud_tasks_queue_iam_member.webhook_trigger_enqueue,
    google_service_account_iam_member.webhook_trigger_act_as_tasks_invoker,
  ]
}

# ---------------------------------------------------------------------------
# sweeper: POSTed by Cloud Scheduler every 5 minutes (scheduler.tf); queues
# the jobs the api stored but could not queue, and re-queues or fails those
# the queue gave up on (a worker killed on its last attempt). One instance:
# runs never need to overlap (and are safe if they do: transactions).
# ---------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "sweeper" {
  #checkov:skip=CKV_GCP_124:Ingress is var.private_ingress (default ALLOW_ALL): Cloud Scheduler calls the public run.app URL and access is enforced by Cloud Run IAM (only the OIDC identity holds run.invoker); ALLOW_INTERNAL_ONLY can be selected as extra hardening.
  project     = var.project_id
  name        = local.function_names.sweeper
  location    = var.region
  description = "Scheduled sweeper: re-queues or fails image jobs left behind."

  build_config {
    runtime           = local.runtime
    entry_point       = "sweeper"
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
    available_memory                 = "256Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 1
    # A run handles at most a few hundred jobs, one transaction and task each.
    timeout_seconds                = local.sweeper_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = 1
    ingress_settings               = var.private_ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.sweeper.email
    environment_variables          = merge(local.env_common, local.env_sweeper)
  }

  depends_on = [
    google_project_service.this,
    google_project_iam_member.builder,
    google_storage_bucket_iam_member.builder_source_read,
    google_artifact_registry_repository_iam_member.builder_push,
    google_project_iam_member.datastore_user,
    google_cloud_tasks_queue_iam_member.sweeper_enqueue_jobs,
    google_service_account_iam_member.sweeper_act_as_tasks_invoker,
  ]
}
