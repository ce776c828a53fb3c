# ---------------------------------------------------------------------------
# Required
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project ID to deploy into (it must already exist and have billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project ID: 6-30 chars, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for Cloud Functions, Cloud Tasks queues, buckets and (by default) Firestore, e.g. \"europe-west1\" or \"us-central1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as \"us-central1\" or \"europe-west4\" (not a zone or a multi-region)."
  }
}

# ---------------------------------------------------------------------------
# Naming / environment
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of the function, service-account and bucket names (functions are <prefix>-api, <prefix>-worker, ...)."
  type        = string
  default     = "imagegen"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-16 chars of lowercase letters, digits and hyphens, starting with a letter (service-account IDs are limited to 30 chars)."
  }
}

variable "environment" {
  description = "Value of the ENVIRONMENT variable seen by the code."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["production", "staging", "development"], var.environment)
    error_message = "environment must be one of: production, staging, development."
  }
}

variable "labels" {
  description = "Labels added to every resource that supports them (provider default_labels)."
  type        = map(string)
  default     = {}
}

variable "log_level" {
  description = "LOG_LEVEL of all functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR."
  }
}

# ---------------------------------------------------------------------------
# Gemini
# ---------------------------------------------------------------------------

variable "gemini_model" {
  description = "Gemini image model used by the worker (GEMINI_MODEL)."
  type        = string
  default     = "gemini-3.1-flash-image"

  validation {
    condition     = length(trimspace(var.gemini_model)) > 0
    error_message = "gemini_model must not be empty."
  }
}

variable "gemini_models" {
  description = "Models a request's `model` may name, alias=model or model, comma-separated (GEMINI_MODELS); gemini_model is always allowed."
  type        = string
  default     = "flash=gemini-3.1-flash-image,pro=gemini-3-pro-image"
}

variable "gemini_model_fallbacks" {
  description = "Models (or gemini_models aliases) tried in order when one answers not found / shut down (GEMINI_MODEL_FALLBACKS); \"\" for none."
  type        = string
  default     = "gemini-3-pro-image"
}

variable "use_vertex_ai" {
  description = "true: call Gemini through Vertex AI with the worker's service account (roles/aiplatform.user, no key). false: use a Gemini API key stored in the Secret Manager secret \"gemini-api-key\"."
  type        = bool
  default     = false
}

variable "vertex_location" {
  description = "Vertex AI location for Gemini (GOOGLE_CLOUD_LOCATION); only used when use_vertex_ai = true."
  type        = string
  default     = "global"

  validation {
    condition     = var.vertex_location == "global" || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.vertex_location))
    error_message = "vertex_location must be \"global\" or a region such as \"us-central1\"."
  }
}

# ---------------------------------------------------------------------------
# Firestore
# ---------------------------------------------------------------------------

variable "create_firestore_database" {
  description = "Create the \"(default)\" Firestore database. Set to false when the project already has one (it must be in Native mode)."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore location (a region such as \"europe-west1\" or a multi-region such as \"nam5\"/\"eur3\"). Defaults to var.region. The Firestore trigger of the webhook function is created in this location."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^([a-z]+-[a-z]+[0-9]+|nam5|eur3|nam7)$", var.firestore_location))
    error_message = "firestore_location must be a region or one of the multi-regions nam5, nam7, eur3."
  }

  # The Eventarc trigger of webhook_trigger is created in the database's
  # location: with a database that exists already, checked at plan time
  # rather than discovered when the trigger creation fails.
  validation {
    condition     = var.create_firestore_database || var.firestore_location != null
    error_message = "create_firestore_database = false: set firestore_location to the location of the existing database (gcloud firestore databases describe --database='(default)' --format='value(locationId)'); the Firestore trigger is created there."
  }

  validation {
    condition     = var.existing_firestore_location == null || coalesce(var.firestore_location, var.region) == var.existing_firestore_location
    error_message = "The project's (default) Firestore database is in ${coalesce(var.existing_firestore_location, "?")}, but the configuration puts the database and its Eventarc trigger in ${coalesce(var.firestore_location, var.region)}: set firestore_location = \"${coalesce(var.existing_firestore_location, "?")}\"."
  }
}

variable "existing_firestore_location" {
  description = "Location of the project's (default) Firestore database when it already exists; deploy.sh reads it with gcloud. The plan then fails if firestore_location (default: region) differs, instead of the trigger creation failing during apply. null = not checked."
  type        = string
  default     = null
}

variable "firestore_delete_protection" {
  description = "Enable delete protection on the Firestore database created by this configuration."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Images bucket
# ---------------------------------------------------------------------------

variable "public_image_urls" {
  description = "false (default): images are private and served via V4 signed URLs (IMAGE_URL_MODE=signed). true: the images bucket is world-readable and plain public URLs are returned (IMAGE_URL_MODE=public)."
  type        = bool
  default     = false
}

variable "image_retention_days" {
  description = "Generated images are deleted by a bucket lifecycle rule after this many days."
  type        = number
  default     = 30

  validation {
    condition     = var.image_retention_days >= 1 && var.image_retention_days <= 3650 && floor(var.image_retention_days) == var.image_retention_days
    error_message = "image_retention_days must be a whole number between 1 and 3650."
  }
}

variable "signed_url_ttl_seconds" {
  description = "Lifetime of the V4 signed image URLs (SIGNED_URL_TTL_SECONDS). V4 signing allows at most 7 days."
  type        = number
  default     = 3600

  validation {
    condition     = var.signed_url_ttl_seconds >= 60 && var.signed_url_ttl_seconds <= 604800
    error_message = "signed_url_ttl_seconds must be between 60 and 604800 (7 days)."
  }
}

variable "cors_origins" {
  description = "Origins allowed to GET/HEAD images from the bucket in browsers."
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.cors_origins) > 0 && alltrue([for o in var.cors_origins : o == "*" || can(regex("^https?://[^/]+$", o))])
    error_message = "cors_origins must be a non-empty list of \"*\" or origins such as \"https://app.example.com\" (no path, no trailing slash)."
  }
}

variable "force_destroy_images" {
  description = "Allow `terraform destroy` to delete the images bucket even when it still contains images."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------
# Functions sizing / scaling
# ---------------------------------------------------------------------------

variable "api_min_instances" {
  description = "Minimum instances of the api function (0 = scale to zero; 1 removes cold starts for about the price of one idle instance)."
  type        = number
  default     = 0

  validation {
    condition     = var.api_min_instances >= 0 && var.api_min_instances <= 100
    error_message = "api_min_instances must be between 0 and 100."
  }
}

variable "api_max_instances" {
  description = "Maximum instances of the api function (each handles up to 80 concurrent requests)."
  type        = number
  default     = 20

  validation {
    condition     = var.api_max_instances >= 1 && var.api_max_instances <= 1000
    error_message = "api_max_instances must be between 1 and 1000."
  }
}

variable "worker_max_instances" {
  description = "Maximum instances of the worker function (each runs up to 4 jobs at once)."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_max_instances >= 1 && var.worker_max_instances <= 1000
    error_message = "worker_max_instances must be between 1 and 1000."
  }
}

variable "worker_cpu" {
  description = "vCPUs of a worker instance (image post-processing with Pillow is CPU bound)."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4"], var.worker_cpu)
    error_message = "worker_cpu must be \"1\", \"2\" or \"4\"."
  }
}

variable "worker_memory" {
  description = "Memory of a worker instance: 4 concurrent jobs x up to 4 images (ultra: 4K model output, 773 MiB peak for one such job in make bench); 4Gi is the most 1 vCPU allows."
  type        = string
  default     = "4Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.worker_memory))
    error_message = "worker_memory must look like \"2Gi\" or \"1536Mi\"."
  }
}

variable "webhook_max_instances" {
  description = "Maximum instances of each of the webhook_trigger and webhook_delivery functions."
  type        = number
  default     = 10

  validation {
    condition     = var.webhook_max_instances >= 1 && var.webhook_max_instances <= 1000
    error_message = "webhook_max_instances must be between 1 and 1000."
  }
}

variable "private_ingress" {
  description = "Ingress of the private functions (worker, webhook_delivery, webhook_trigger). ALLOW_ALL relies on IAM (OIDC tokens checked by Cloud Run) only; ALLOW_INTERNAL_ONLY additionally rejects traffic that does not come from Cloud Tasks / Eventarc / VPC of this project."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY"], var.private_ingress)
    error_message = "private_ingress must be ALLOW_ALL or ALLOW_INTERNAL_ONLY."
  }
}

variable "public_base_url" {
  description = "Public base URL of the API used in links (PUBLIC_BASE_URL), e.g. a custom domain. Empty = the api function's deterministic Cloud Run URL https://<prefix>-api-<project number>.<region>.run.app."
  type        = string
  default     = ""

  validation {
    condition     = var.public_base_url == "" || can(regex("^https://", var.public_base_url))
    error_message = "public_base_url must be empty or start with https://."
  }
}

# ---------------------------------------------------------------------------
# Cloud Tasks
# ---------------------------------------------------------------------------

variable "jobs_queue_max_dispatches_per_second" {
  description = "Rate at which image jobs are dispatched to the worker (tasks/second)."
  type        = number
  default     = 5

  validation {
    condition     = var.jobs_queue_max_dispatches_per_second > 0 && var.jobs_queue_max_dispatches_per_second <= 500
    error_message = "jobs_queue_max_dispatches_per_second must be in (0, 500]."
  }
}

variable "jobs_queue_max_concurrent_dispatches" {
  description = "Maximum image jobs running at once (keep <= worker_max_instances x 4 and within the Gemini quota)."
  type        = number
  default     = 20

  validation {
    condition     = var.jobs_queue_max_concurrent_dispatches >= 1 && var.jobs_queue_max_concurrent_dispatches <= 5000
    error_message = "jobs_queue_max_concurrent_dispatches must be between 1 and 5000."
  }
}

variable "webhook_queue_max_dispatches_per_second" {
  description = "Rate at which webhook deliveries are attempted (deliveries/second)."
  type        = number
  default     = 10

  validation {
    condition     = var.webhook_queue_max_dispatches_per_second > 0 && var.webhook_queue_max_dispatches_per_second <= 500
    error_message = "webhook_queue_max_dispatches_per_second must be in (0, 500]."
  }
}

variable "webhook_queue_max_concurrent_dispatches" {
  description = "Maximum webhook deliveries in flight at once."
  type        = number
  default     = 50

  validation {
    condition     = var.webhook_queue_max_concurrent_dispatches >= 1 && var.webhook_queue_max_concurrent_dispatches <= 5000
    error_message = "webhook_queue_max_concurrent_dispatches must be between 1 and 5000."
  }
}

variable "tasks_logging_sampling_ratio" {
  description = "Fraction (0-1) of Cloud Tasks dispatch attempts written to Cloud Logging."
  type        = number
  default     = 0.1

  validation {
    condition     = var.tasks_logging_sampling_ratio >= 0 && var.tasks_logging_sampling_ratio <= 1
    error_message = "tasks_logging_sampling_ratio must be between 0 and 1."
  }
}

variable "sweeper_schedule" {
  description = "Cron schedule (UTC) of the Cloud Scheduler job that runs the sweeper."
  type        = string
  default     = "*/5 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.sweeper_schedule))) == 5
    error_message = "sweeper_schedule must be a 5-field cron expression such as \"*/5 * * * *\"."
  }
}

# ---------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------

variable "webhook_enabled" {
  description = "Deliver job webhooks (WEBHOOK_ENABLED). Deliveries are signed with the \"webhook-secret\" secret."
  type        = bool
  default     = true
}

variable "webhook_url" {
  description = "Default webhook URL notified for every job that does not carry its own (WEBHOOK_URL). Empty = only per-job webhooks."
  type        = string
  default     = ""

  validation {
    condition     = var.webhook_url == "" || can(regex("^https://", var.webhook_url))
    error_message = "webhook_url must be empty or an https:// URL."
  }
}
