# One service account per function plus the OIDC identity of the queues and
# the Cloud Build identity. Every grant is scoped to the narrowest resource
# that the API allows (queue, bucket, secret, service account, service);
# project-level grants are only used where no narrower scope exists
# (Firestore, Vertex AI, Eventarc event receiving, Cloud Build).

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-api"
  display_name = "${var.name_prefix} api function"
  description  = "Runtime identity of the public API function."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-worker"
  display_name = "${var.name_prefix} worker function"
  description  = "Runtime identity of the image generation worker."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "webhook_trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-wh-trigger"
  display_name = "${var.name_prefix} webhook trigger function"
  description  = "Runtime and Eventarc trigger identity of the Firestore-triggered webhook fan-out function."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "webhook_delivery" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-wh-delivery"
  display_name = "${var.name_prefix} webhook delivery function"
  description  = "Runtime identity of the webhook delivery function."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "sweeper" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-sweeper"
  display_name = "${var.name_prefix} sweeper function"
  description  = "Runtime identity of the scheduled sweeper (re-queues or fails jobs left behind)."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "tasks_invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks"
  display_name = "${var.name_prefix} Cloud Tasks invoker"
  description  = "OIDC identity of the Cloud Tasks HTTP tasks and of the sweeper's Cloud Scheduler job; may only invoke the worker, webhook_delivery and sweeper functions."
  depends_on   = [google_project_service.this]
}

resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-builder"
  display_name = "${var.name_prefix} function builder"
  description  = "Cloud Build identity that builds the function containers."
  depends_on   = [google_project_service.this]
}

locals {
  runtime_members = {
    api              = "serviceAccount:${google_service_account.api.email}"
    worker           = "serviceAccount:${google_service_account.worker.email}"
    webhook_trigger  = "serviceAccount:${google_service_account.webhook_trigger.email}"
    webhook_delivery = "serviceAccount:${google_service_account.webhook_delivery.email}"
    sweeper          = "serviceAccount:${google_service_account.sweeper.email}"
  }
  tasks_invoker_member = "serviceAccount:${google_service_account.tasks_invoker.email}"
  builder_member       = "serviceAccount:${google_service_account.builder.email}"
}

# ---------------------------------------------------------------------------
# Custom roles on the images bucket: the predefined ones either miss a
# permission the code needs (objectViewer cannot delete) or grant more than it
# uses (objectUser adds update/restore/list to the worker). Each holds exactly
# the permissions of the rows of tests/infra/iam_table.py that it serves.
# ---------------------------------------------------------------------------

resource "google_project_iam_custom_role" "images_read_delete" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_images_read_delete"
  title       = "${var.name_prefix} images: read, list, delete"
  description = "The api serves images and deletes a cancelled job's images."
  permissions = ["storage.objects.delete", "storage.objects.get", "storage.objects.list"]
  depends_on  = [google_project_service.this]
}

resource "google_project_iam_custom_role" "images_read" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_images_read"
  title       = "${var.name_prefix} images: read objects"
  description = "The worker reads gs:// reference images of the images bucket (no listing)."
  permissions = ["storage.objects.get"]
  depends_on  = [google_project_service.this]
}

resource "google_project_iam_custom_role" "images_write" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_images_write"
  title       = "${var.name_prefix} images: create, delete"
  description = "The worker stores (and on retries overwrites) images, and deletes those of cancelled jobs."
  permissions = ["storage.objects.create", "storage.objects.delete"]
  depends_on  = [google_project_service.this]
}

# ---------------------------------------------------------------------------
# Firestore: read/write documents (no narrower scope than the project exists).
# ---------------------------------------------------------------------------

resource "google_project_iam_member" "datastore_user" {
  for_each = local.runtime_members

  project = var.project_id
  role    = "roles/datastore.user"
  member  = each.value
}

# ---------------------------------------------------------------------------
# api
# ---------------------------------------------------------------------------

# V4 signed URLs (signed mode only): functions have no private key, so the
# api signs through iamcredentials signBlob with its own identity.
resource "google_service_account_iam_member" "api_sign_blob_self" {
  count = var.public_image_urls ? 0 : 1

  service_account_id = google_service_account.api.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.runtime_members.api
}

# Serve images (GET /generated_images/...) and delete a cancelled job's
# images (list + delete). No predefined role has exactly these.
resource "google_storage_bucket_iam_member" "api_images_read_delete" {
  bucket = google_storage_bucket.images.name
  role   = google_project_iam_custom_role.images_read_delete.id
  member = local.runtime_members.api
}

# ---------------------------------------------------------------------------
# worker
# ---------------------------------------------------------------------------

# Create images (a retried attempt overwrites the same name, which needs
# delete too) and delete one stored after its job was cancelled. The worker
# never lists or updates objects.
resource "google_storage_bucket_iam_member" "worker_images_write" {
  bucket = google_storage_bucket.images.name
  role   = google_project_iam_custom_role.images_write.id
  member = local.runtime_members.worker
}

# Read a gs:// reference image (input_image_urls) stored in the images bucket.
# Buckets of INPUT_IMAGE_BUCKETS are not managed here: grant the worker's
# service account roles/storage.objectViewer on each of them.
resource "google_storage_bucket_iam_member" "worker_images_read" {
  bucket = google_storage_bucket.images.name
  role   = google_project_iam_custom_role.images_read.id
  member = local.runtime_members.worker
}

resource "google_secret_manager_secret_iam_member" "worker_gemini_key" {
  count = var.use_vertex_ai ? 0 : 1

  project   = var.project_id
  secret_id = google_secret_manager_secret.gemini_api_key[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_members.worker
}

resource "google_project_iam_member" "worker_vertex" {
  count = var.use_vertex_ai ? 1 : 0

  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = local.runtime_members.worker
}

# ---------------------------------------------------------------------------
# webhook_trigger (Firestore -> Eventarc -> function -> webhook queue)

# The completed payload carries result URLs: in signed mode the trigger signs
# them through IAM signBlob as itself, like the api does.
resource "google_service_account_iam_member" "webhook_trigger_sign_blob_self" {
  count = var.public_image_urls ? 0 : 1

  service_account_id = google_service_account.webhook_trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.runtime_members.webhook_trigger
}

# A V4 signed URL is authorised as its signer: without read access to the
# objects the URLs it signs would answer 403. legacyObjectReader is
# storage.objects.get only (no listing).
resource "google_storage_bucket_iam_member" "webhook_trigger_images_read" {
  count = var.public_image_urls ? 0 : 1

  bucket = google_storage_bucket.images.name
  role   = "roles/storage.legacyObjectReader"
  member = local.runtime_members.webhook_trigger
}

# The function's SA is also the Eventarc trigger identity: it must be allowed
# to receive events (project scope only) and to invoke the function (below).
resource "google_project_iam_member" "webhook_trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = local.runtime_members.webhook_trigger
}

# ---------------------------------------------------------------------------
# webhook_delivery
# ---------------------------------------------------------------------------

resource "google_secret_manager_secret_iam_member" "webhook_delivery_secret" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_members.webhook_delivery
}

# ---------------------------------------------------------------------------
# Task creators: the api queues image jobs, webhook_trigger webhook
# deliveries, the sweeper the jobs the api could not queue and those the
# queue gave up on. Each enqueues on its queue and, as its tasks carry an
# OIDC token of tasks-invoker, needs actAs on that service account.
# ---------------------------------------------------------------------------

locals {
  task_creators = {
    api             = google_cloud_tasks_queue.jobs.name
    webhook_trigger = google_cloud_tasks_queue.webhooks.name
    sweeper         = google_cloud_tasks_queue.jobs.name
  }
}

resource "google_cloud_tasks_queue_iam_member" "enqueue" {
  for_each = local.task_creators

  project  = var.project_id
  location = var.region
  name     = each.value
  role     = "roles/cloudtasks.enqueuer"
  member   = local.runtime_members[each.key]
}

resource "google_service_account_iam_member" "act_as_tasks_invoker" {
  for_each = local.task_creators

  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.runtime_members[each.key]
}

# ---------------------------------------------------------------------------
# Invocation
# ---------------------------------------------------------------------------

locals {
  # Who may invoke each function (roles/run.invoker on its Cloud Run service).
  invokers = {
    # The API is public at the network and IAM level; it authenticates
    # callers itself with API keys.
    api = "allUsers"
    # Only Cloud Tasks (OIDC token of tasks-invoker) may call the private
    # HTTP functions.
    worker           = local.tasks_invoker_member
    webhook_delivery = local.tasks_invoker_member
    # Cloud Scheduler calls the sweeper with an OIDC token of the same
    # identity: the sweeper authenticates its caller like a task target does
    # (the token's email must be TASKS_SERVICE_ACCOUNT), so only Scheduler or
    # a task may run it.
    sweeper = local.tasks_invoker_member
    # Eventarc pushes with the trigger identity's OIDC token.
    webhook_trigger = local.runtime_members.webhook_trigger
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = each.value
}

# One resource per grant until local.invokers and local.task_creators: these
# keep their state. Remove them once every deployment has applied them.
moved {
  from = google_cloud_run_v2_service_iam_member.api_public
  to   = google_cloud_run_v2_service_iam_member.invoker["api"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.worker_tasks_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["worker"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.webhook_delivery_tasks_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["webhook_delivery"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.sweeper_scheduler_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["sweeper"]
}

moved {
  from = google_cloud_run_v2_service_iam_member.webhook_trigger_invoker
  to   = google_cloud_run_v2_service_iam_member.invoker["webhook_trigger"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.api_enqueue_jobs
  to   = google_cloud_tasks_queue_iam_member.enqueue["api"]
}

moved {
  from = google_service_account_iam_member.api_act_as_tasks_invoker
  to   = google_service_account_iam_member.act_as_tasks_invoker["api"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.webhook_trigger_enqueue
  to   = google_cloud_tasks_queue_iam_member.enqueue["webhook_trigger"]
}

moved {
  from = google_service_account_iam_member.webhook_trigger_act_as_tasks_invoker
  to   = google_service_account_iam_member.act_as_tasks_invoker["webhook_trigger"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.sweeper_enqueue_jobs
  to   = google_cloud_tasks_queue_iam_member.enqueue["sweeper"]
}

moved {
  from = google_service_account_iam_member.sweeper_act_as_tasks_invoker
  to   = google_service_account_iam_member.act_as_tasks_invoker["sweeper"]
}

# ---------------------------------------------------------------------------
# Cloud Build identity used to build the function images: the documented role
# for function builds (logs, Artifact Registry push, source download).
# ---------------------------------------------------------------------------

resource "google_project_iam_member" "builder" {
  #checkov:skip=CKV_GCP_49:roles/cloudbuild.builds.builder is the role Google documents for custom function-build service accounts; it is granted to a dedicated build-only SA that no function runs as, instead of the default Compute/Cloud Build SAs.
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = local.builder_member
}

resource "google_storage_bucket_iam_member" "builder_source_read" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = local.builder_member
}

resource "google_artifact_registry_repository_iam_member" "builder_push" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = local.builder_member
}
