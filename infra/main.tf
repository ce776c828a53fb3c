# Shared names, environment variables and the function source archive.
#
# Names that the code also knows (collection, queues, secrets) are defined once
# here; tests/infra/test_terraform.py checks them against the defaults in
# functions/imagegen/config.py.

# Project number for the deterministic run.app URLs. Read after the APIs are
# enabled (Resource Manager may be off in a brand-new project).
data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.this]
}

locals {
  # The Python minor version the tests run on (tests/infra checks it against
  # the interpreter running them) and the lock is resolved for.
  runtime = "python311"

  # Firestore collections.
  jobs_collection        = "image_jobs"
  idempotency_collection = "idempotency_keys"
  ttl_field              = "expires_at"

  # Cloud Tasks queue names. A deleted queue name cannot be reused for ~7 days.
  jobs_queue_name    = "image-jobs"
  webhook_queue_name = "webhook-deliveries"

  # Secret Manager secret IDs (values are added out of band, never in state).
  gemini_secret_id  = "gemini-api-key"
  webhook_secret_id = "webhook-secret"

  firestore_location = coalesce(var.firestore_location, var.region)
  firestore_database = var.create_firestore_database ? google_firestore_database.default[0].name : "(default)"

  function_names = {
    api              = "${var.name_prefix}-api"
    worker           = "${var.name_prefix}-worker"
    webhook_trigger  = "${var.name_prefix}-webhook-trigger"
    webhook_delivery = "${var.name_prefix}-webhook-delivery"
    sweeper          = "${var.name_prefix}-sweeper"
  }

  # Each function needs URLs of the others, and the worker / webhook_delivery
  # also need their OWN URL (the OIDC audience they verify on incoming tasks),
  # which the function resource cannot reference. The deterministic Cloud Run
  # URL https://SERVICE-PROJECT_NUMBER.REGION.run.app is known before
  # deployment, is one of the service's run.app URLs (accepted as OIDC audience
  # by Cloud Run) and so breaks every dependency cycle.
  function_urls = {
    for key, name in local.function_names :
    key => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  public_base_url = var.public_base_url != "" ? trimsuffix(var.public_base_url, "/") : local.function_urls.api

  # The api serves event streams (GET /api/images/events/<id>, closed after
  # SSE_MAX_SECONDS so EventSource reconnects and an instance is not held for
  # ever) and long-polls (?wait= up to 30 s). Each open one holds one request
  # slot and one functions-framework (gunicorn) thread of an instance, so the
  # concurrency is high, THREADS matches it, and the request timeout exceeds
  # the stream cap (a stream cut by the timeout ends in an error instead of a
  # clean close).
  sse_max_seconds     = 300
  api_timeout_seconds = local.sse_max_seconds + 60
  api_concurrency     = 250

  env_api = {
    SSE_MAX_SECONDS = tostring(local.sse_max_seconds)
    THREADS         = tostring(local.api_concurrency)
  }

  # The sweeper checks the audience of Cloud Scheduler's OIDC token against
  # its own URL.
  sweeper_timeout_seconds = 120
  env_sweeper = {
    SWEEPER_URL = local.function_urls.sweeper
  }

  # Attempts of an image job; the worker fails the job on the last one.
  jobs_queue_max_attempts = 10

  # Environment of every function (all share one environment, plus a few
  # variables of their own: env_api, env_sweeper). Each key
  # must be a name the code reads (enforced by tests/infra/test_terraform.py).
  # Secrets (GOOGLE_API_KEY, WEBHOOK_SECRET) are added per function in
  # functions.tf from Secret Manager.
  env_common = {
    ENVIRONMENT = var.environment
    # Explicit, whatever var.environment says: without it the code requires
    # credentials only when ENVIRONMENT=production, so "staging" would be an
    # open API.
    AUTH_REQUIRED             = "true"
    GOOGLE_CLOUD_PROJECT      = var.project_id
    LOG_LEVEL                 = var.log_level
    GEMINI_MODEL              = var.gemini_model
    GEMINI_MODELS             = var.gemini_models
    GEMINI_MODEL_FALLBACKS    = var.gemini_model_fallbacks
    GOOGLE_GENAI_USE_VERTEXAI = var.use_vertex_ai ? "true" : "false"
    GOOGLE_CLOUD_LOCATION     = var.vertex_location
    JOBS_COLLECTION           = local.jobs_collection
    IMAGES_BUCKET             = google_storage_bucket.images.name
    IMAGE_URL_MODE            = var.public_image_urls ? "public" : "signed"
    SIGNED_URL_TTL_SECONDS    = tostring(var.signed_url_ttl_seconds)
    PUBLIC_BASE_URL           = local.public_base_url
    CORS_ALLOWED_ORIGINS      = join(",", var.cors_origins)
    TASKS_LOCATION            = var.region
    TASKS_QUEUE               = google_cloud_tasks_queue.jobs.name
    WORKER_URL                = local.function_urls.worker
    WORKER_MAX_ATTEMPTS       = tostring(local.jobs_queue_max_attempts)
    TASKS_SERVICE_ACCOUNT     = google_service_account.tasks_invoker.email
    WEBHOOK_TASKS_QUEUE       = google_cloud_tasks_queue.webhooks.name
    WEBHOOK_DELIVERY_URL      = local.function_urls.webhook_delivery
    WEBHOOK_URL               = var.webhook_url
    WEBHOOK_ENABLED           = var.webhook_enabled ? "true" : "false"
  }
}

# ---------------------------------------------------------------------------
# Function source: the files of functions/ listed in source_files.tf, with
# requirements.txt replaced by the hashed lock (functions/requirements.lock):
# the Python buildpack runs `pip install -r requirements.txt`, and a file with
# --hash lines makes pip verify every package (hash-checking mode). The zip is
# uploaded under its MD5, so any code or lock change creates a new object and
# redeploys the functions, and a previous revision can be redeployed from git.
# ---------------------------------------------------------------------------

data "archive_file" "functions_source" {
  type             = "zip"
  output_path      = "${path.module}/.build/functions-source.zip"
  output_file_mode = "0644"

  dynamic "source" {
    for_each = local.functions_source_files
    content {
      filename = source.value
      content  = file("${local.functions_source_dir}/${source.value}")
    }
  }

  source {
    filename = "requirements.txt"
    content  = file("${local.functions_source_dir}/${local.functions_lock_file}")
  }
}

resource "google_storage_bucket_object" "functions_source" {
  name         = "functions-${data.archive_file.functions_source.output_md5}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.functions_source.output_path
  content_type = "application/zip"

  lifecycle {
    precondition {
      condition     = length(local.functions_missing_built_files) == 0
      error_message = "Missing from functions/: ${join(", ", local.functions_missing_built_files)}. Run `make web` (Node.js) before deploying: the api serves the playground from it."
    }
  }
}
