"""Offline checks of the Terraform in infra/.

The google provider cannot be downloaded in CI, so `terraform validate/plan`
is impossible; instead this module runs:

* ``terraform fmt -check -recursive infra``;
* checkov on infra/ (zero failed checks; skips are inline and justified);
* static checks of the parsed HCL (python-hcl2): the contract between the
  Terraform and the code (entry points in functions/main.py, environment
  variable names and defaults in functions/imagegen/config.py) and the shape
  the service relies on (queues, Firestore indexes/TTL, IAM, secrets).

Each group skips with a reason when its tool is not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.infra import hcl

REPO = hcl.REPO
INFRA = hcl.INFRA
MAIN_PY = REPO / "functions" / "main.py"
CONFIG_PY = REPO / "functions" / "imagegen" / "config.py"
INDEXES_JSON = INFRA / "firestore.indexes.json"

# Every environment variable name the brief/code contract defines. The
# Terraform must set exactly these (GOOGLE_API_KEY only in API-key mode).
EXPECTED_ENV = {
    "ENVIRONMENT",
    "AUTH_REQUIRED",
    "GOOGLE_CLOUD_PROJECT",
    "GEMINI_MODEL",
    "GEMINI_MODELS",
    "GEMINI_MODEL_FALLBACKS",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_API_KEY",
    "JOBS_COLLECTION",
    "IMAGES_BUCKET",
    "IMAGE_URL_MODE",
    "SIGNED_URL_TTL_SECONDS",
    "PUBLIC_BASE_URL",
    "TASKS_LOCATION",
    "TASKS_QUEUE",
    "WEBHOOK_TASKS_QUEUE",
    "WORKER_URL",
    "WEBHOOK_DELIVERY_URL",
    "TASKS_SERVICE_ACCOUNT",
    "WEBHOOK_URL",
    "WEBHOOK_ENABLED",
    "WEBHOOK_SECRET",
    "LOG_LEVEL",
    "CORS_ALLOWED_ORIGINS",
    "WORKER_MAX_ATTEMPTS",
    "SSE_MAX_SECONDS",
    "THREADS",
    "SWEEPER_URL",
}

# Read directly by Google client libraries (google-genai, google-auth), so the
# application config module does not have to mention them.
LIBRARY_ENV = {
    "THREADS",  # functions-framework: gunicorn threads
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_LOCATION",
}

# The deployed runtime is the Python the tests run on.
TESTED_RUNTIME = f"python{sys.version_info.major}{sys.version_info.minor}"

FUNCTIONS = {
    # terraform resource name: (entry point, memory, timeout seconds)
    "api": ("api", "512Mi", 360),
    "worker": ("worker", "4Gi", 540),
    "webhook_trigger": ("webhook_trigger", "256Mi", 60),
    "webhook_delivery": ("webhook_delivery", "256Mi", 60),
    "sweeper": ("sweeper", "256Mi", 120),
}


# ---------------------------------------------------------------------------
# terraform fmt
# ---------------------------------------------------------------------------


def test_terraform_fmt() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform CLI is not installed")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        "terraform fmt found unformatted files (run `terraform fmt -recursive infra`):\n"
        + proc.stdout
        + proc.stderr
    )


# ---------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------


def _checkov_command() -> list[str] | None:
    exe = shutil.which("checkov")
    if exe is not None:
        return [exe]
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    # The Makefile keeps checkov in a virtual environment of its own.
    local = REPO / ".venv-iac" / "bin" / "checkov"
    if local.exists():
        return [str(local)]
    return None


def test_checkov_has_no_failed_checks() -> None:
    cmd = _checkov_command()
    if cmd is None:
        pytest.skip("checkov is not installed (pip install checkov==3.3.30)")
    proc = subprocess.run(
        [
            *cmd,
            "-d",
            str(INFRA),
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov produced no JSON report (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    parsing_errors = sum(r.get("summary", {}).get("parsing_errors", 0) for r in reports)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert parsing_errors == 0, (
        f"checkov could not parse some files:\n{proc.stdout[-2000:]}"
    )
    assert passed > 0, (
        f"checkov scanned nothing:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )


# ---------------------------------------------------------------------------
# Code-side facts (functions/main.py, functions/imagegen/config.py)
# ---------------------------------------------------------------------------


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
ENV_READERS = {"get", "getenv", "pop", "setdefault"}


def _env_reads(path: Path) -> set[str]:
    """Names passed as first argument to os.environ.get / os.getenv / _env*(...)
    or used as os.environ["NAME"] in one Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            fname = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            first = node.args[0]
            if (
                (fname in ENV_READERS or fname.startswith("_env"))
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and ENV_NAME.match(first.value)
            ):
                names.add(first.value)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "environ"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def _config_env() -> tuple[set[str], dict[str, str]]:
    """Env-like string constants in config.py and the defaults next to them."""
    if not CONFIG_PY.exists():
        pytest.skip(
            f"{CONFIG_PY.relative_to(REPO)} does not exist yet; env contract not checked"
        )
    tree = ast.parse(CONFIG_PY.read_text(encoding="utf-8"), filename=str(CONFIG_PY))
    names: set[str] = set()
    defaults: dict[str, str] = {}

    def const_str(node: ast.AST | None) -> str | None:
        return (
            node.value
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            else None
        )

    for node in ast.walk(tree):
        value = const_str(node)
        if value is not None and ENV_NAME.match(value):
            names.add(value)
        if isinstance(node, ast.Call) and node.args:
            key = const_str(node.args[0])
            if key and ENV_NAME.match(key):
                default = const_str(node.args[1]) if len(node.args) > 1 else None
                for kw in node.keywords:
                    if kw.arg in ("default", "fallback"):
                        default = const_str(kw.value)
                if default is not None:
                    defaults.setdefault(key, default)
        if (
            isinstance(node, ast.BoolOp)
            and isinstance(node.op, ast.Or)
            and len(node.values) == 2
        ):
            call, fallback = node.values
            if isinstance(call, ast.Call) and call.args:
                key = const_str(call.args[0])
                default = const_str(fallback)
                if key and default is not None and ENV_NAME.match(key):
                    defaults.setdefault(key, default)
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                key, default = const_str(k), const_str(v)
                if key and default is not None and ENV_NAME.match(key):
                    defaults.setdefault(key, default)
    return names, defaults


# ---------------------------------------------------------------------------
# Contract with the code
# ---------------------------------------------------------------------------


def test_entry_points_exist_in_main_py() -> None:
    functions = hcl.functions()
    assert set(functions) == set(FUNCTIONS), (
        f"unexpected functions: {sorted(functions)}"
    )
    if not MAIN_PY.exists():
        pytest.skip(f"{MAIN_PY.relative_to(REPO)} does not exist yet")
    defined = _top_level_names(MAIN_PY)
    for name, body in functions.items():
        entry = hcl.attr(hcl.blocks(body, "build_config")[0], "entry_point")
        assert entry == FUNCTIONS[name][0]
        assert entry in defined, (
            f"entry point {entry!r} of {name} is not defined at top level of functions/main.py"
        )


def test_env_names_are_read_by_the_code() -> None:
    """Every variable Terraform sets is read by the code: named in config.py
    (the settings module) or read through os.environ / _env* anywhere under
    functions/ (main.py reads LOG_LEVEL), or consumed by a Google library."""
    tf_names = hcl.all_env_names()
    config_names, _ = _config_env()
    code_names = set(config_names)
    for path in (REPO / "functions").rglob("*.py"):
        code_names |= _env_reads(path)
    unknown = tf_names - code_names - LIBRARY_ENV
    assert not unknown, (
        f"Terraform sets environment variables that the code never reads: {sorted(unknown)}"
    )


def test_names_match_config_defaults() -> None:
    _, defaults = _config_env()
    tf_locals = hcl.tf()["locals"]
    expected = {
        "TASKS_QUEUE": tf_locals["jobs_queue_name"],
        "WEBHOOK_TASKS_QUEUE": tf_locals["webhook_queue_name"],
        "JOBS_COLLECTION": tf_locals["jobs_collection"],
    }
    compared = 0
    for env_name, tf_value in expected.items():
        if env_name in defaults:
            compared += 1
            assert defaults[env_name] == tf_value, (
                f"{env_name}: config.py default {defaults[env_name]!r} != Terraform {tf_value!r}"
            )
    if compared == 0:
        pytest.skip(
            "config.py declares no literal defaults for TASKS_QUEUE / WEBHOOK_TASKS_QUEUE / JOBS_COLLECTION"
        )


# ---------------------------------------------------------------------------
# Shape of the Terraform itself (no code needed)
# ---------------------------------------------------------------------------


def test_env_matches_contract_and_references_real_resources() -> None:
    assert hcl.all_env_names() == EXPECTED_ENV
    env = {}
    for body in hcl.functions().values():
        env.update(hcl.env_of(body))
    assert hcl.resolve(env["TASKS_QUEUE"]) == "image-jobs"
    assert hcl.resolve(env["WEBHOOK_TASKS_QUEUE"]) == "webhook-deliveries"
    assert hcl.resolve(env["JOBS_COLLECTION"]) == "image_jobs"
    assert env["GOOGLE_API_KEY"] == "secret:${var.use_vertex_ai ? null : local.gemini_secret_id}"
    assert env["WEBHOOK_SECRET"].startswith("secret:")
    # The worker fails a job on the queue's last attempt: both use one local.
    assert "local.jobs_queue_max_attempts" in env["WORKER_MAX_ATTEMPTS"]
    assert hcl.tf()["locals"]["jobs_queue_max_attempts"] == 10
    funcs = hcl.functions()
    # The api creates tasks for WORKER_URL and the worker verifies it as OIDC
    # audience (same for WEBHOOK_DELIVERY_URL): one value shared by all, the
    # deterministic run.app URL of the target function.
    for fn in funcs.values():
        fn_env = hcl.env_of(fn)
        assert fn_env["WORKER_URL"] == "${local.function_urls.worker}"
        assert (
            fn_env["WEBHOOK_DELIVERY_URL"] == "${local.function_urls.webhook_delivery}"
        )
    # Explicit on every function: ENVIRONMENT=staging must not open the API.
    for name, fn in funcs.items():
        assert hcl.env_of(fn)["AUTH_REQUIRED"] == "true", name
    assert "GOOGLE_API_KEY" in hcl.env_of(funcs["worker"])
    assert "GOOGLE_API_KEY" not in hcl.env_of(funcs["api"])
    assert "WEBHOOK_SECRET" in hcl.env_of(funcs["webhook_delivery"])


def _moved(file: str) -> list[tuple[str, str]]:
    """(from, to) of the moved blocks of one file of infra/."""
    with (INFRA / file).open(encoding="utf-8") as fh:
        return [(hcl.val(m["from"]), hcl.val(m["to"])) for m in hcl.hcl2_module().load(fh).get("moved", [])]


def test_functions_and_grants_are_for_each_maps_that_kept_their_state() -> None:
    """One google_cloudfunctions2_function over local.functions (entry point =
    key), one run.invoker grant over local.invokers, one enqueue and one actAs
    grant over local.task_creators; the moved blocks map each former resource
    to its instance (the instances exist: test_iam.py reads them)."""
    resources = hcl.tf()["resource"]
    assert list(resources["google_cloudfunctions2_function"]) == ["this"]
    assert list(resources["google_cloud_run_v2_service_iam_member"]) == ["invoker"]
    assert set(hcl.tf()["locals"]["invokers"]) == set(FUNCTIONS)
    assert _moved("functions.tf") == [
        (f"${{google_cloudfunctions2_function.{name}}}", f'${{google_cloudfunctions2_function.this["{name}"]}}')
        for name in hcl.tf()["locals"]["functions"]
    ]
    invoker = "google_cloud_run_v2_service_iam_member"
    enqueue, act_as = "google_cloud_tasks_queue_iam_member", "google_service_account_iam_member"
    former = [
        (f"{invoker}.api_public", f'{invoker}.invoker["api"]'),
        (f"{invoker}.worker_tasks_invoker", f'{invoker}.invoker["worker"]'),
        (f"{invoker}.webhook_delivery_tasks_invoker", f'{invoker}.invoker["webhook_delivery"]'),
        (f"{invoker}.sweeper_scheduler_invoker", f'{invoker}.invoker["sweeper"]'),
        (f"{invoker}.webhook_trigger_invoker", f'{invoker}.invoker["webhook_trigger"]'),
        (f"{enqueue}.api_enqueue_jobs", f'{enqueue}.enqueue["api"]'),
        (f"{enqueue}.webhook_trigger_enqueue", f'{enqueue}.enqueue["webhook_trigger"]'),
        (f"{enqueue}.sweeper_enqueue_jobs", f'{enqueue}.enqueue["sweeper"]'),
    ] + [
        (f"{act_as}.{fn}_act_as_tasks_invoker", f'{act_as}.act_as_tasks_invoker["{fn}"]')
        for fn in ("api", "webhook_trigger", "sweeper")
    ]
    assert sorted(_moved("iam.tf")) == sorted((f"${{{a}}}", f"${{{b}}}") for a, b in former)
    assert set(hcl.tf()["locals"]["task_creators"]) == {"api", "webhook_trigger", "sweeper"}


def test_function_settings() -> None:
    tf = hcl.tf()
    for name, (entry, memory, timeout) in FUNCTIONS.items():
        body = hcl.functions()[name]
        build = hcl.blocks(body, "build_config")[0]
        service = hcl.blocks(body, "service_config")[0]
        assert hcl.resolve(hcl.attr(build, "runtime")) == TESTED_RUNTIME, name
        assert hcl.attr(build, "entry_point") == entry
        storage = hcl.blocks(hcl.blocks(build, "source")[0], "storage_source")[0]
        assert "functions_source" in hcl.attr(storage, "object"), name
        mem = hcl.attr(service, "available_memory")
        if mem.startswith("${var."):
            mem = hcl.val(tf["variable"][mem[6:-1]]["default"])
        assert mem == memory, name
        assert _number(hcl.attr(service, "timeout_seconds")) == timeout, name
        assert (
            hcl.attr(service, "service_account_email")
            == f"${{google_service_account.{name}.email}}"
        )
        # Only the api is open at the network level (it checks API keys itself).
        ingress = "ALLOW_ALL" if name == "api" else "${var.private_ingress}"
        assert hcl.attr(service, "ingress_settings") == ingress, name
    api_service = hcl.blocks(hcl.functions()["api"], "service_config")[0]
    assert _number(hcl.attr(api_service, "max_instance_request_concurrency")) == 250
    assert hcl.attr(api_service, "available_cpu") == "1"
    assert (
        hcl.attr(
            hcl.blocks(hcl.functions()["worker"], "service_config")[0],
            "max_instance_request_concurrency",
        )
        == 4
    )
    zip_object = tf["resource"]["google_storage_bucket_object"]["functions_source"]
    assert "output_md5" in hcl.attr(zip_object, "name")


def _number(value: object) -> int:
    """A literal number, or locals and numbers summed: ${local.a + 60}, ${tostring(local.a)}."""
    if isinstance(value, int):
        return value
    expression = re.sub(r"^\$\{(tostring\()?|\)?\}$", "", str(value))
    total = 0
    for term in expression.split("+"):
        term = term.strip()
        if term.startswith("local."):
            total += _number(hcl.tf()["locals"][term.removeprefix("local.")])
        else:
            total += int(term)
    return total


def _code_default(name: str) -> int:
    found = re.search(rf'_env_int\("{name}", (\d+)\)', CONFIG_PY.read_text(encoding="utf-8"))
    assert found, f"config.py reads no integer {name}"
    return int(found.group(1))


def test_api_serves_event_streams_and_long_polls() -> None:
    """Open streams hold a request slot and a gunicorn thread each, and the
    request timeout must outlast the stream cap (issue 11)."""
    api = hcl.functions()["api"]
    service = hcl.blocks(api, "service_config")[0]
    env = hcl.env_of(api)
    cap = _number(env["SSE_MAX_SECONDS"])
    assert cap == _code_default("SSE_MAX_SECONDS") == 300
    timeout = _number(hcl.attr(service, "timeout_seconds"))
    assert timeout >= cap + 30, "the api timeout must exceed SSE_MAX_SECONDS with a margin"
    assert timeout <= 3600  # Cloud Functions gen2 HTTP maximum
    long_poll = re.search(r"MAX_WAIT_SECONDS = (\d+)", (REPO / "functions/imagegen/api/long_poll.py").read_text())
    assert long_poll and int(long_poll.group(1)) + 30 <= timeout
    concurrency = _number(hcl.attr(service, "max_instance_request_concurrency"))
    threads = _number(env["THREADS"])
    assert concurrency == threads >= 100, "one gunicorn thread per concurrent request"
    assert hcl.attr(service, "available_cpu") == "1"  # concurrency > 1 needs a full vCPU
    for name in ("worker", "webhook_trigger", "webhook_delivery"):
        assert "THREADS" not in hcl.env_of(hcl.functions()[name]), name


def test_firestore_rules_are_deployed() -> None:
    resources = hcl.tf()["resource"]
    rules = (INFRA / "firestore.rules").read_text(encoding="utf-8")
    assert rules.lstrip().startswith("rules_version = '2';") and "service cloud.firestore" in rules
    ruleset = resources["google_firebaserules_ruleset"]["firestore"]
    files = hcl.blocks(hcl.blocks(ruleset, "source")[0], "files")
    assert [hcl.attr(f, "content") for f in files] == ['${file("${path.module}/firestore.rules")}']
    assert hcl.attr(hcl.blocks(ruleset, "lifecycle")[0], "create_before_destroy") is True
    release = resources["google_firebaserules_release"]["firestore"]
    assert hcl.attr(release, "name") == "cloud.firestore"
    assert hcl.attr(release, "ruleset_name") == (
        "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"
    )
    assert "firebaserules.googleapis.com" in hcl.tf()["locals"]["apis"]


def test_firestore_trigger() -> None:
    trigger = hcl.blocks(hcl.functions()["webhook_trigger"], "event_trigger")[0]
    assert hcl.attr(trigger, "event_type") == "google.cloud.firestore.document.v1.written"
    assert hcl.attr(trigger, "retry_policy") == "RETRY_POLICY_RETRY"
    filters = {hcl.attr(f, "attribute"): f for f in hcl.blocks(trigger, "event_filters")}
    assert set(filters) == {"database", "document"}
    assert hcl.attr(filters["document"], "operator") == "match-path-pattern"
    assert hcl.resolve(hcl.attr(filters["document"], "value")) == "image_jobs/{jobId}"
    for name in ("api", "worker", "webhook_delivery"):
        assert not hcl.blocks(hcl.functions()[name], "event_trigger"), (
            f"{name} must be an HTTP function"
        )


def test_invokers() -> None:
    from tests.infra.test_iam import bindings

    invokers = [b for b in bindings() if b.role == "roles/run.invoker"]
    assert all(b.resource.startswith("google_cloud_run_v2_service_iam_member.") for b in invokers)
    by_function: dict[str, set[str]] = {}
    for b in invokers:
        by_function.setdefault(b.scope.removeprefix("service:"), set()).add(b.principal)
    assert by_function == {
        "api": {"allUsers"},
        "worker": {"tasks_invoker"},
        "webhook_delivery": {"tasks_invoker"},
        "sweeper": {"tasks_invoker"},
        "webhook_trigger": {"webhook_trigger"},
    }


def test_queues() -> None:
    queues = hcl.tf()["resource"]["google_cloud_tasks_queue"]
    jobs_retry = hcl.blocks(queues["jobs"], "retry_config")[0]
    assert hcl.attr(jobs_retry, "max_attempts") == "${local.jobs_queue_max_attempts}"
    assert hcl.attr(jobs_retry, "min_backoff") == "60s"
    assert hcl.attr(jobs_retry, "max_backoff") == "300s"
    assert hcl.attr(jobs_retry, "max_doublings") == 4
    hooks_retry = hcl.blocks(queues["webhooks"], "retry_config")[0]
    assert hcl.attr(hooks_retry, "max_attempts") == 25
    assert hcl.attr(hooks_retry, "max_retry_duration") == "86400s"
    assert hcl.resolve(hcl.attr(queues["jobs"], "name")) == "image-jobs"
    assert hcl.resolve(hcl.attr(queues["webhooks"], "name")) == "webhook-deliveries"


def test_no_secret_values_in_terraform() -> None:
    resources = hcl.tf()["resource"]
    assert "google_secret_manager_secret_version" not in resources
    secrets = resources["google_secret_manager_secret"]
    assert {hcl.resolve(hcl.attr(s, "secret_id")) for s in secrets.values()} == {
        "gemini-api-key",
        "webhook-secret",
    }
    for secret in secrets.values():
        replication = hcl.blocks(secret, "replication")[0]
        assert "auto" in replication


def test_variables_and_outputs() -> None:
    tf = hcl.tf()
    for name, body in tf["variable"].items():
        assert "description" in body and "type" in body, (
            f"variable {name} needs a type and a description"
        )
    for required in ("project_id", "region"):
        assert "default" not in tf["variable"][required], (
            f"{required} must not have a default"
        )
    assert {
        "api_url",
        "images_bucket",
        "worker_url",
        "jobs_queue",
        "webhook_queue",
    } <= set(tf["output"])
    assert hcl.val(tf["variable"]["gemini_model"]["default"]) == "gemini-3.1-flash-image"
    assert hcl.val(tf["variable"]["image_retention_days"]["default"]) == 30


# Which queries of the code need which composite index (all on image_jobs).
# firestore.indexes.json must hold exactly these; Terraform builds them from it.
CODE_INDEXES = sorted(
    [
        # Rate limit: count(owner == X and created_at > now - 1 min) and the
        # oldest of those (order by created_at asc) for Retry-After.
        (("owner", "ASCENDING"), ("created_at", "ASCENDING")),
        # GET /api/images/jobs: owner == X order by created_at desc.
        (("owner", "ASCENDING"), ("created_at", "DESCENDING")),
        # ... ?status=: owner == X and status == Y order by created_at desc.
        (("owner", "ASCENDING"), ("status", "ASCENDING"), ("created_at", "DESCENDING")),
        # Sweeper, PENDING jobs whose task was never created: status ==
        # PENDING and queued_at == null and created_at < T.
        (("status", "ASCENDING"), ("queued_at", "ASCENDING"), ("created_at", "ASCENDING")),
        # Sweeper, unfinished jobs nothing wrote to for long: status in [...]
        # and updated_at < T.
        (("status", "ASCENDING"), ("updated_at", "ASCENDING")),
        # Sweeper, unfinished jobs past their timeout_seconds: status in [...]
        # and deadline_at < now.
        (("status", "ASCENDING"), ("deadline_at", "ASCENDING")),
        # GET /api/usage: per day, count and sum(usage_*) where owner == X and
        # completed_day == D; sum() scans an index, so the summed fields are in it.
        tuple(
            (field, "ASCENDING")
            for field in (
                "owner", "completed_day", "usage_cost_usd", "usage_images",
                "usage_input_tokens", "usage_output_tokens", "usage_thinking_tokens",
            )
        ),
        # Per-key monthly budget: sum(usage_cost_usd) where api_key == K and
        # completed_day >= first of the month.
        (("api_key", "ASCENDING"), ("completed_day", "ASCENDING"), ("usage_cost_usd", "ASCENDING")),
    ]
)


def test_the_codes_queries_have_their_indexes_in_the_json() -> None:
    doc = json.loads(INDEXES_JSON.read_text(encoding="utf-8"))
    json_indexes = sorted(
        (i["collectionGroup"], i["queryScope"], tuple((f["fieldPath"], f["order"]) for f in i["fields"]))
        for i in doc["indexes"]
    )
    assert json_indexes == sorted(("image_jobs", "COLLECTION", fields) for fields in CODE_INDEXES)
    assert hcl.tf()["locals"]["jobs_collection"] == "image_jobs"


def test_terraform_builds_every_index_of_the_json() -> None:
    """firestore.tf makes one google_firestore_index per JSON entry (for_each
    over local.firestore_indexes, evaluated here by terraform console), and the
    moved blocks carry the former one-resource-per-index addresses over."""
    resources = hcl.tf()["resource"]
    assert list(resources["google_firestore_index"]) == ["composite"]
    index = resources["google_firestore_index"]["composite"]
    assert hcl.attr(index, "for_each") == "${local.firestore_indexes}"
    assert hcl.attr(index, "collection") == "${each.value.collectionGroup}"
    assert hcl.attr(index, "query_scope") == "${each.value.queryScope}"
    assert hcl.attr(index, "database") == "${local.firestore_database}"
    (dynamic,) = hcl.blocks(index, "dynamic")
    fields = dynamic[next(k for k in dynamic if hcl.unquote(k) == "fields")]
    assert hcl.attr(fields, "for_each") == "${each.value.fields}"
    content = hcl.blocks(fields, "content")[0]
    assert {k: hcl.attr(content, k) for k in ("field_path", "order", "array_config")} == {
        "field_path": "${fields.value.fieldPath}",
        "order": "${try(fields.value.order, null)}",
        "array_config": "${try(fields.value.arrayConfig, null)}",
    }
    built = _console(
        {"indexes": "{ for k, i in local.firestore_indexes : k => "
         "[i.collectionGroup, i.queryScope, [for f in i.fields : [f.fieldPath, try(f.order, null)]]] }"},
        files=("firestore_indexes.tf", "firestore.indexes.json"),
    )["indexes"]
    assert sorted((c, s, tuple(map(tuple, f))) for c, s, f in built.values()) == sorted(
        ("image_jobs", "COLLECTION", fields) for fields in CODE_INDEXES
    )
    assert "image_jobs:owner_asc,status_asc,created_at_desc" in built  # keys name the fields
    moved = _moved("firestore.tf")
    assert len(moved) == 7  # the seven indexes that existed as one resource each
    for old, new in moved:
        assert re.fullmatch(r"\$\{google_firestore_index\.jobs_\w+\}", old), old
        key = re.fullmatch(r'\$\{google_firestore_index\.composite\["(.+)"\]\}', new)
        assert key and key.group(1) in built, new


def test_firestore_ttl_matches_the_json() -> None:
    resources = hcl.tf()["resource"]
    doc = json.loads(INDEXES_JSON.read_text(encoding="utf-8"))
    tf_ttl = sorted(
        (hcl.resolve(hcl.attr(body, "collection")), hcl.resolve(hcl.attr(body, "field")))
        for body in resources["google_firestore_field"].values()
        if hcl.blocks(body, "ttl_config") or "ttl_config" in body
    )
    assert tf_ttl == [
        ("idempotency_keys", "expires_at"),
        ("image_jobs", "expires_at"),
        ("webhook_deliveries", "expires_at"),
    ]
    json_ttl = sorted(
        (o["collectionGroup"], o["fieldPath"])
        for o in doc["fieldOverrides"]
        if o.get("ttl")
    )
    assert json_ttl == tf_ttl


# ---------------------------------------------------------------------------
# The source zip: every file of functions/ the code needs, and the hashed lock
# as requirements.txt (what the Cloud Functions buildpack installs).
# ---------------------------------------------------------------------------


def _console(
    expressions: dict[str, str], files: tuple[str, ...] = ("source_files.tf",)
) -> dict[str, object]:
    """Evaluate expressions of provider-free files of infra/ (source_files.tf,
    firestore_indexes.tf) with `terraform console` on the real tree (no init)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform CLI is not installed")
    # Piped input prints only the last result: one object holds them all.
    expression = "jsonencode({" + ", ".join(f"{k} = {v}" for k, v in expressions.items()) + "})"
    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / "infra"
        module.mkdir()
        for name in files:
            shutil.copy(INFRA / name, module)
        (Path(tmp) / "functions").symlink_to(REPO / "functions")
        proc = subprocess.run(
            [terraform, "console"],
            input=expression + "\n",
            cwd=module,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    return json.loads(json.loads(proc.stdout))


def test_source_zip_ships_the_code_and_the_lock_as_requirements_txt() -> None:
    found = _console({
        "files": "local.functions_source_files",
        "lock": "local.functions_lock_file",
        "built": "local.functions_built_files",
        "missing": "local.functions_missing_built_files",
    })
    files, lock_name = found["files"], found["lock"]
    functions_dir = REPO / "functions"
    expected = {
        str(p.relative_to(functions_dir))
        for p in functions_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    } - {"requirements.txt", lock_name}
    assert set(files) == expected
    assert "main.py" in files and "imagegen/api/router.py" in files
    # Built files (make web) must be there to deploy: the plan fails otherwise.
    assert found["built"] == ["imagegen/api/static/playground.js"]
    assert found["missing"] == [f for f in found["built"] if not (functions_dir / f).is_file()]
    zip_object = hcl.tf()["resource"]["google_storage_bucket_object"]["functions_source"]
    precondition = hcl.blocks(hcl.blocks(zip_object, "lifecycle")[0], "precondition")[0]
    assert hcl.attr(precondition, "condition") == "${length(local.functions_missing_built_files) == 0}"
    for name in files:  # archive_file `source` blocks carry text (file() reads UTF-8)
        (functions_dir / name).read_text(encoding="utf-8")
    archive = hcl.tf()["data"]["archive_file"]["functions_source"]
    extra = {hcl.attr(b, "filename"): hcl.attr(b, "content") for b in hcl.blocks(archive, "source")}
    assert list(extra) == ["requirements.txt"]
    assert "local.functions_lock_file" in extra["requirements.txt"]
    # The lock pins every requirement with hashes, so pip installs in
    # hash-checking mode and nothing unpinned can slip in.
    lock = (functions_dir / lock_name).read_text(encoding="utf-8")
    pinned = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, flags=re.MULTILINE)
    assert pinned and lock.count("--hash=sha256:") >= len(pinned)
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", lock, flags=re.MULTILINE)[1:]
    assert all("--hash=sha256:" in b for b in blocks)
    direct = re.findall(r"^([A-Za-z0-9_.-]+)==", (functions_dir / "requirements.txt").read_text(), flags=re.MULTILINE)
    normal = {n.lower().replace("_", "-") for n in pinned}
    assert {n.lower().replace("_", "-") for n in direct} <= normal


# ---------------------------------------------------------------------------
# The sweeper and its Cloud Scheduler job
# ---------------------------------------------------------------------------


def test_scheduler_runs_the_sweeper_every_5_minutes_with_oidc() -> None:
    tf = hcl.tf()
    job = tf["resource"]["google_cloud_scheduler_job"]["sweeper"]
    assert hcl.attr(job, "schedule") == "${var.sweeper_schedule}"
    assert hcl.val(tf["variable"]["sweeper_schedule"]["default"]) == "*/5 * * * *"
    assert hcl.attr(job, "time_zone") == "Etc/UTC"
    target = hcl.blocks(job, "http_target")[0]
    assert hcl.attr(target, "http_method") == "POST"
    assert "body" not in target and "headers" not in target  # the sweeper reads no body
    assert hcl.attr(target, "uri") == "${local.function_urls.sweeper}"
    oidc = hcl.blocks(target, "oidc_token")[0]
    # The sweeper checks the token like a task's: email TASKS_SERVICE_ACCOUNT,
    # audience its own URL (SWEEPER_URL).
    assert hcl.attr(oidc, "service_account_email") == "${google_service_account.tasks_invoker.email}"
    assert hcl.attr(oidc, "audience") == hcl.attr(target, "uri")
    sweeper = hcl.functions()["sweeper"]
    env = hcl.env_of(sweeper)
    assert env["SWEEPER_URL"] == hcl.attr(target, "uri")
    assert env["TASKS_SERVICE_ACCOUNT"] == "${google_service_account.tasks_invoker.email}"
    assert not hcl.blocks(job, "pubsub_target") and not hcl.blocks(job, "app_engine_http_target")
    timeout = _number(hcl.attr(hcl.blocks(sweeper, "service_config")[0], "timeout_seconds"))
    deadline = re.fullmatch(r"\$\{local\.(\w+) \+ (\d+)\}s", hcl.attr(job, "attempt_deadline"))
    assert deadline, hcl.attr(job, "attempt_deadline")
    assert _number(f"${{local.{deadline.group(1)} + {deadline.group(2)}}}") > timeout
    assert "cloudscheduler.googleapis.com" in tf["locals"]["apis"]


def test_sweeper_is_private_with_least_privilege() -> None:
    sweeper = hcl.functions()["sweeper"]
    service = hcl.blocks(sweeper, "service_config")[0]
    assert hcl.attr(service, "ingress_settings") == "${var.private_ingress}"
    assert hcl.attr(service, "max_instance_count") == 1
    assert hcl.attr(service, "service_account_email") == "${google_service_account.sweeper.email}"
    assert not hcl.blocks(sweeper, "event_trigger")
    # Its own identity and exactly these grants (every one used: test_iam.py).
    from tests.infra.test_iam import bindings

    grants = sorted((b.role, b.scope) for b in bindings() if b.principal == "sweeper")
    assert grants == [
        ("roles/cloudtasks.enqueuer", "queue:jobs"),
        ("roles/datastore.user", "project"),
        ("roles/iam.serviceAccountUser", "serviceAccount:tasks_invoker"),
    ]
    invokers = {b.principal for b in bindings() if b.scope == "service:sweeper"}
    assert invokers == {"tasks_invoker"}
