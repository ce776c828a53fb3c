"""Every Google API call of the deployed service, the permission it needs, and
the permissions of the roles infra/ grants. tests/infra/test_iam.py checks this
table against the code (tests/infra/code_calls.py) and against the Terraform's
IAM bindings, both ways: a call without a grant fails, and so does a grant that
no row uses.

HOW TO ADD A ROW. You made the code call a new Google API (or an existing one
from another entry point), and test_iam says "<function> reaches <operation>
... but the IAM table has no row for it":

1. Add a ``Call`` below, next to the rows of the same principal:
   ``Call(principal, operation, permissions, resource, why, when=None)``
   * principal: the ``google_service_account`` resource name in infra/iam.tf
     that makes the call (the function's runtime SA: ``api``, ``worker``,
     ``webhook_trigger``, ``webhook_delivery``, ``sweeper``; or a platform
     identity: ``tasks_invoker``, ``scheduler``, ``builder``; or ``allUsers``).
   * operation: what tests/infra/code_calls.py reports (``firestore``,
     ``storage.get|create|delete|list|sign``, ``tasks.create``,
     ``gemini``), or a platform operation (``secret.env``, ``eventarc.trigger``,
     ``invoke``, ``build``) that the code cannot show.
   * permissions: the IAM permissions of that call (Google's API reference
     lists them per method).
   * resource: where the grant must be: ``project``, ``bucket:<name>``,
     ``queue:<name>``, ``serviceAccount:<name>``, ``secret:<name>``,
     ``service:<function>``, ``repository:<name>`` (Terraform resource names).
   * when: ``None`` (always) or a condition on a bool variable of infra/
     (``"use_vertex_ai"``, ``"not public_image_urls"``), when the call only
     happens in that configuration.
2. Grant it in infra/iam.tf at the narrowest scope (bucket, queue, secret,
   service account) with a role whose permissions are listed in
   ``ROLE_PERMISSIONS`` (add the role there if it is new; for a custom role
   in Terraform the test reads its permissions from infra/ itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    principal: str
    operation: str
    permissions: tuple[str, ...]
    resource: str
    why: str
    when: str | None = None


# Firestore permissions per kind of access (roles/datastore.user has them all).
READ = ("datastore.entities.get", "datastore.entities.list")
WRITE = ("datastore.entities.create", "datastore.entities.update")
SIGNED = "not public_image_urls"

CALLS: list[Call] = [
    # --- api ---------------------------------------------------------------
    Call("api", "firestore", READ + WRITE + ("datastore.entities.delete",), "project",
         "jobs, idempotency keys (deleted when an enqueue fails), API keys, owners' webhook signing secrets"
         " (webhook_secrets: created, rotated); listing and rate-limit queries"),
    Call("api", "tasks.create", ("cloudtasks.tasks.create",), "queue:jobs",
         "one named task per job (task_queue.enqueue_json)"),
    Call("api", "tasks.create", ("iam.serviceAccounts.actAs",), "serviceAccount:tasks_invoker",
         "the task carries an OIDC token of the tasks SA"),
    Call("api", "storage.get", ("storage.objects.get",), "bucket:images",
         "GET /generated_images/<job>/<file> streams the object (storage.download)"),
    Call("api", "storage.list", ("storage.objects.list",), "bucket:images",
         "cancel lists the job's images (storage.delete_job_images)"),
    Call("api", "storage.delete", ("storage.objects.delete",), "bucket:images",
         "cancel deletes the job's images"),
    Call("api", "storage.sign", ("iam.serviceAccounts.signBlob",), "serviceAccount:api",
         "V4 signed result URLs, signed through IAM as itself (no key file)", when=SIGNED),
    Call("api", "storage.sign", ("storage.objects.get",), "bucket:images",
         "a signed URL is authorised as its signer: the signer must read the object", when=SIGNED),
    # --- worker ------------------------------------------------------------
    Call("worker", "firestore", ("datastore.entities.get", "datastore.entities.update"), "project",
         "claims the job's lease, records progress, images and the final status (transactions)"),
    Call("worker", "storage.create", ("storage.objects.create", "storage.objects.delete"), "bucket:images",
         "uploads each image; a retried attempt overwrites the same name, which needs delete too"),
    Call("worker", "storage.delete", ("storage.objects.delete",), "bucket:images",
         "removes an image stored after the job was cancelled"),
    Call("worker", "storage.get", ("storage.objects.get",), "bucket:images",
         "reads a gs:// reference image of input_image_urls (reference_images); other buckets of "
         "INPUT_IMAGE_BUCKETS are the operator's to grant"),
    Call("worker", "gemini", ("aiplatform.endpoints.predict",), "project",
         "generate_content on Vertex AI as the worker's SA", when="use_vertex_ai"),
    Call("worker", "gemini", (), "project",
         "Gemini Developer API with the API key: no IAM", when="not use_vertex_ai"),
    Call("worker", "secret.env", ("secretmanager.versions.access",), "secret:gemini_api_key",
         "Cloud Run resolves GOOGLE_API_KEY as the runtime SA when an instance starts",
         when="not use_vertex_ai"),
    # --- webhook_trigger ---------------------------------------------------
    Call("webhook_trigger", "firestore", READ + WRITE, "project",
         "creates and reads the delivery records image_jobs/{id}/webhook_deliveries/{event}"),
    Call("webhook_trigger", "tasks.create", ("cloudtasks.tasks.create",), "queue:webhooks",
         "one named task per webhook delivery"),
    Call("webhook_trigger", "tasks.create", ("iam.serviceAccounts.actAs",), "serviceAccount:tasks_invoker",
         "the task carries an OIDC token of the tasks SA"),
    Call("webhook_trigger", "storage.sign", ("iam.serviceAccounts.signBlob",), "serviceAccount:webhook_trigger",
         "the job.completed payload carries signed image URLs", when=SIGNED),
    Call("webhook_trigger", "storage.sign", ("storage.objects.get",), "bucket:images",
         "a signed URL is authorised as its signer: the signer must read the object", when=SIGNED),
    Call("webhook_trigger", "eventarc.trigger", ("eventarc.events.receiveEvent",), "project",
         "the function's SA is the Eventarc trigger identity"),
    Call("webhook_trigger", "eventarc.trigger", ("run.routes.invoke",), "service:webhook_trigger",
         "Eventarc pushes the Firestore event with the trigger identity's OIDC token"),
    # --- webhook_delivery --------------------------------------------------
    Call("webhook_delivery", "firestore", ("datastore.entities.get", "datastore.entities.update"), "project",
         "leases the delivery record and records each attempt (transactions); reads the job owner's"
         " signing secret (webhook_secrets) when it sends"),
    Call("webhook_delivery", "secret.env", ("secretmanager.versions.access",), "secret:webhook",
         "Cloud Run resolves WEBHOOK_SECRET as the runtime SA when an instance starts"),
    # --- sweeper -----------------------------------------------------------
    Call("sweeper", "firestore", READ + ("datastore.entities.update",), "project",
         "queries unqueued and quiet jobs, re-queues or fails each in a transaction"),
    Call("sweeper", "tasks.create", ("cloudtasks.tasks.create",), "queue:jobs",
         "queues a job the api could not, or re-queues one the queue gave up on"),
    Call("sweeper", "tasks.create", ("iam.serviceAccounts.actAs",), "serviceAccount:tasks_invoker",
         "the task carries an OIDC token of the tasks SA"),
    # --- platform identities -----------------------------------------------
    Call("tasks_invoker", "invoke", ("run.routes.invoke",), "service:worker",
         "Cloud Tasks calls the worker with the tasks SA's OIDC token"),
    Call("tasks_invoker", "invoke", ("run.routes.invoke",), "service:webhook_delivery",
         "Cloud Tasks calls webhook_delivery with the tasks SA's OIDC token"),
    Call("tasks_invoker", "invoke", ("run.routes.invoke",), "service:sweeper",
         "Cloud Scheduler calls the sweeper every 5 minutes with the tasks SA's OIDC token"),
    Call("allUsers", "invoke", ("run.routes.invoke",), "service:api",
         "the api is public; callers are authenticated by the application"),
    Call("allUsers", "storage.get", ("storage.objects.get",), "bucket:images",
         "browsers GET the plain public image URLs (never list the bucket)", when="public_image_urls"),
    Call("builder", "build", ("logging.logEntries.create",), "project",
         "Cloud Build writes the function build logs"),
    Call("builder", "build", ("storage.objects.get",), "bucket:source",
         "Cloud Build reads the source zip"),
    Call("builder", "build", ("artifactregistry.repositories.uploadArtifacts",), "repository:functions",
         "Cloud Build pushes the function images"),
]

# The permissions of each predefined role granted in infra/ that the rows above
# rely on (from https://cloud.google.com/iam/docs/understanding-roles). Lists
# may omit permissions nothing here uses, except where a row or a test relies
# on a permission being absent (objectViewer includes objects.list: that is why
# allUsers gets legacyObjectReader).
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/datastore.user": frozenset({
        "datastore.databases.get", "datastore.entities.allocateIds", "datastore.entities.create",
        "datastore.entities.delete", "datastore.entities.get", "datastore.entities.list",
        "datastore.entities.update", "datastore.indexes.list", "datastore.namespaces.get",
        "datastore.namespaces.list", "datastore.statistics.get", "datastore.statistics.list",
    }),
    "roles/storage.objectViewer": frozenset({
        "storage.objects.get", "storage.objects.list", "storage.folders.get", "storage.folders.list",
        "storage.managedFolders.get", "storage.managedFolders.list",
    }),
    "roles/storage.objectUser": frozenset({
        "storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list",
        "storage.objects.restore", "storage.objects.update", "storage.multipartUploads.create",
        "storage.multipartUploads.abort", "storage.multipartUploads.list",
        "storage.multipartUploads.listParts",
    }),
    "roles/storage.legacyObjectReader": frozenset({"storage.objects.get"}),
    "roles/cloudtasks.enqueuer": frozenset({"cloudtasks.tasks.create"}),
    "roles/iam.serviceAccountUser": frozenset({
        "iam.serviceAccounts.actAs", "iam.serviceAccounts.get", "iam.serviceAccounts.list",
    }),
    "roles/iam.serviceAccountTokenCreator": frozenset({
        "iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt", "iam.serviceAccounts.getAccessToken",
        "iam.serviceAccounts.getOpenIdToken", "iam.serviceAccounts.implicitDelegation",
    }),
    "roles/secretmanager.secretAccessor": frozenset({"secretmanager.versions.access"}),
    "roles/aiplatform.user": frozenset({
        "aiplatform.endpoints.predict", "aiplatform.endpoints.get", "aiplatform.models.get",
    }),
    "roles/eventarc.eventReceiver": frozenset({"eventarc.events.receiveEvent"}),
    "roles/run.invoker": frozenset({"run.routes.invoke"}),
    "roles/cloudbuild.builds.builder": frozenset({
        "logging.logEntries.create", "storage.objects.get", "storage.objects.create",
        "artifactregistry.repositories.uploadArtifacts", "artifactregistry.repositories.downloadArtifacts",
    }),
    "roles/artifactregistry.writer": frozenset({
        "artifactregistry.repositories.uploadArtifacts", "artifactregistry.repositories.downloadArtifacts",
    }),
}
