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
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN_PY = REPO / "functions" / "main.py"
CONFIG_PY = REPO / "functions" / "imagegen" / "config.py"
INDEXES_JSON = INFRA / "firestore.indexes.json"

# Every environment variable name the brief/code contract defines. The
# Terraform must set exactly these (GOOGLE_API_KEY only in API-key mode).
EXPECTED_ENV = {
    "ENVIRONMENT",
    "GOOGLE_CLOUD_PROJECT",
    "GEMINI_MODEL",
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
}

# Read directly by Google client libraries (google-genai, google-auth), so the
# application config module does not have to mention them.
LIBRARY_ENV = {
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_LOCATION",
}

FUNCTIONS = {
    # terraform resource name: (entry point, memory, timeout seconds)
    "api": ("api", "512Mi", 60),
    "worker": ("worker", "2Gi", 540),
    "webhook_trigger": ("webhook_trigger", "256Mi", 60),
    "webhook_delivery": ("webhook_delivery", "256Mi", 60),
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
# HCL parsing helpers (tolerant of python-hcl2 >= 5, which keeps the quotes of
# strings and labels, and of checkov's bc-python-hcl2, which wraps every
# attribute value in a one-element list; both install the `hcl2` module).
# ---------------------------------------------------------------------------


def _hcl2():
    try:
        import hcl2  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("python-hcl2 is not installed (pip install python-hcl2==8.1.4)")
    return hcl2


@lru_cache(maxsize=1)
def _dialect() -> bool:
    """True when attribute values come wrapped in one-element lists."""
    probe = _hcl2().loads('a = "x"\n')
    return isinstance(probe["a"], list)


def _unquote(value: Any) -> Any:
    if (
        isinstance(value, str)
        and len(value) >= 2
        and value[0] == '"'
        and value[-1] == '"'
    ):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def _val(value: Any) -> Any:
    """An attribute value: unwrapped, unquoted; maps get unquoted keys."""
    if _dialect() and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return _val_inner(value)


def _val_inner(value: Any) -> Any:
    value = _unquote(value)
    if isinstance(value, dict):
        return {
            _unquote(k): _val_inner(v)
            for k, v in value.items()
            if not str(k).startswith("__")
        }
    if isinstance(value, list):
        return [_val_inner(v) for v in value]
    return value


def _attr(body: dict, name: str, default: Any = None) -> Any:
    return _val(body[name]) if name in body else default


def _blocks(body: dict, name: str) -> list[dict]:
    value = body.get(name, [])
    if isinstance(value, dict):
        return [value]
    return [b for b in value if isinstance(b, dict)]


def _labeled(block_list: list) -> dict[str, dict]:
    """{label: body} of a list of single-label blocks (variable, output, ...)."""
    out: dict[str, dict] = {}
    for item in block_list:
        for label, body in item.items():
            if not str(label).startswith("__"):
                out[_unquote(label)] = body
    return out


@lru_cache(maxsize=1)
def _tf() -> dict[str, Any]:
    hcl2 = _hcl2()
    files = sorted(INFRA.glob("*.tf"))
    assert files, "no .tf files in infra/"
    resources: dict[str, dict[str, dict]] = {}
    locals_: dict[str, Any] = {}
    variables: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    for path in files:
        with path.open(encoding="utf-8") as fh:
            doc = hcl2.load(fh)
        for item in doc.get("resource", []):
            for rtype, named in item.items():
                for rname, body in named.items():
                    if str(rname).startswith("__"):
                        continue
                    resources.setdefault(_unquote(rtype), {})[_unquote(rname)] = body
        for block in doc.get("locals", []):
            for key, value in block.items():
                if not str(key).startswith("__"):
                    locals_[key] = _val(value)
        variables.update(_labeled(doc.get("variable", [])))
        outputs.update(_labeled(doc.get("output", [])))
    return {
        "resource": resources,
        "locals": locals_,
        "variable": variables,
        "output": outputs,
    }


def _resolve(text: Any, depth: int = 0) -> Any:
    """Resolve simple references (${local.x}, ${type.name.attr}) inside a string."""
    if not isinstance(text, str) or depth > 5:
        return text
    tf = _tf()

    def repl(match: re.Match) -> str:
        ref = match.group(1).strip()
        parts = ref.split(".")
        if parts[0] == "local" and len(parts) == 2 and parts[1] in tf["locals"]:
            value = tf["locals"][parts[1]]
            return (
                str(_resolve(value, depth + 1))
                if not isinstance(value, (dict, list))
                else match.group(0)
            )
        if (
            len(parts) == 3
            and parts[0] in tf["resource"]
            and parts[1] in tf["resource"][parts[0]]
        ):
            body = tf["resource"][parts[0]][parts[1]]
            if parts[2] in body:
                value = _attr(body, parts[2])
                if isinstance(value, (str, int, float)):
                    return str(_resolve(value, depth + 1))
        return match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9_.\[\]]+)\}", repl, text)


def _functions() -> dict[str, dict]:
    return _tf()["resource"].get("google_cloudfunctions2_function", {})


def _env_of(body: dict) -> dict[str, str]:
    """Environment of one function: plain variables (through locals) + secrets."""
    service = _blocks(body, "service_config")[0]
    env: dict[str, str] = {}
    raw = _attr(service, "environment_variables", {})
    if isinstance(raw, dict):
        env.update(raw)
    else:  # "${local.a}" or "${merge(local.a, local.b)}"
        names = re.findall(r"local\.([A-Za-z0-9_]+)", str(raw))
        assert names, f"cannot read environment_variables expression {raw!r}"
        for name in names:
            value = _tf()["locals"].get(name)
            assert isinstance(value, dict), (
                f"local.{name} used as environment map is not a map literal"
            )
            env.update(value)
    for block in _blocks(service, "secret_environment_variables"):
        env[_attr(block, "key")] = "secret:" + str(_attr(block, "secret"))
    for dyn in _blocks(service, "dynamic"):
        for label, dbody in dyn.items():
            if _unquote(label) == "secret_environment_variables":
                for content in _blocks(dbody, "content"):
                    env[_attr(content, "key")] = "secret:" + str(
                        _attr(content, "secret")
                    )
    return env


def _all_env_names() -> set[str]:
    names: set[str] = set()
    for body in _functions().values():
        names |= set(_env_of(body))
    return names


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
    functions = _functions()
    assert set(functions) == set(FUNCTIONS), (
        f"unexpected functions: {sorted(functions)}"
    )
    if not MAIN_PY.exists():
        pytest.skip(f"{MAIN_PY.relative_to(REPO)} does not exist yet")
    defined = _top_level_names(MAIN_PY)
    for name, body in functions.items():
        entry = _attr(_blocks(body, "build_config")[0], "entry_point")
        assert entry == FUNCTIONS[name][0]
        assert entry in defined, (
            f"entry point {entry!r} of {name} is not defined at top level of functions/main.py"
        )


def test_env_names_are_read_by_the_code() -> None:
    """Every variable Terraform sets is read by the code: named in config.py
    (the settings module) or read through os.environ / _env* anywhere under
    functions/ (main.py reads LOG_LEVEL), or consumed by a Google library."""
    tf_names = _all_env_names()
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
    tf_locals = _tf()["locals"]
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
    assert _all_env_names() == EXPECTED_ENV
    env = {}
    for body in _functions().values():
        env.update(_env_of(body))
    assert _resolve(env["TASKS_QUEUE"]) == "image-jobs"
    assert _resolve(env["WEBHOOK_TASKS_QUEUE"]) == "webhook-deliveries"
    assert _resolve(env["JOBS_COLLECTION"]) == "image_jobs"
    assert env["GOOGLE_API_KEY"] == "secret:${secret_environment_variables.value}"
    assert env["WEBHOOK_SECRET"].startswith("secret:")
    # The worker fails a job on the queue's last attempt: both use one local.
    assert "local.jobs_queue_max_attempts" in env["WORKER_MAX_ATTEMPTS"]
    assert _tf()["locals"]["jobs_queue_max_attempts"] == 10
    funcs = _functions()
    # The api creates tasks for WORKER_URL and the worker verifies it as OIDC
    # audience (same for WEBHOOK_DELIVERY_URL): one value shared by all, the
    # deterministic run.app URL of the target function.
    for fn in funcs.values():
        fn_env = _env_of(fn)
        assert fn_env["WORKER_URL"] == "${local.function_urls.worker}"
        assert (
            fn_env["WEBHOOK_DELIVERY_URL"] == "${local.function_urls.webhook_delivery}"
        )
    assert "GOOGLE_API_KEY" in _env_of(funcs["worker"])
    assert "GOOGLE_API_KEY" not in _env_of(funcs["api"])
    assert "WEBHOOK_SECRET" in _env_of(funcs["webhook_delivery"])


def test_function_settings() -> None:
    tf = _tf()
    for name, (entry, memory, timeout) in FUNCTIONS.items():
        body = _functions()[name]
        build = _blocks(body, "build_config")[0]
        service = _blocks(body, "service_config")[0]
        assert _resolve(_attr(build, "runtime")) == "python312", name
        assert _attr(build, "entry_point") == entry
        storage = _blocks(_blocks(build, "source")[0], "storage_source")[0]
        assert "functions_source" in _attr(storage, "object"), name
        mem = _attr(service, "available_memory")
        if mem.startswith("${var."):
            mem = _val(tf["variable"][mem[6:-1]]["default"])
        assert mem == memory, name
        assert _attr(service, "timeout_seconds") == timeout, name
        assert (
            _attr(service, "service_account_email")
            == f"${{google_service_account.{name}.email}}"
        )
    api_service = _blocks(_functions()["api"], "service_config")[0]
    assert _attr(api_service, "max_instance_request_concurrency") == 80
    assert _attr(api_service, "available_cpu") == "1"
    assert (
        _attr(
            _blocks(_functions()["worker"], "service_config")[0],
            "max_instance_request_concurrency",
        )
        == 4
    )
    zip_object = tf["resource"]["google_storage_bucket_object"]["functions_source"]
    assert "output_md5" in _attr(zip_object, "name")


def test_firestore_trigger() -> None:
    trigger = _blocks(_functions()["webhook_trigger"], "event_trigger")[0]
    assert _attr(trigger, "event_type") == "google.cloud.firestore.document.v1.written"
    assert _attr(trigger, "retry_policy") == "RETRY_POLICY_RETRY"
    filters = {_attr(f, "attribute"): f for f in _blocks(trigger, "event_filters")}
    assert set(filters) == {"database", "document"}
    assert _attr(filters["document"], "operator") == "match-path-pattern"
    assert _resolve(_attr(filters["document"], "value")) == "image_jobs/{jobId}"
    for name in ("api", "worker", "webhook_delivery"):
        assert not _blocks(_functions()[name], "event_trigger"), (
            f"{name} must be an HTTP function"
        )


def test_invokers() -> None:
    members = {
        name: (_attr(body, "name"), _attr(body, "role"), _attr(body, "member"))
        for name, body in _tf()["resource"][
            "google_cloud_run_v2_service_iam_member"
        ].items()
    }
    by_function: dict[str, set[str]] = {}
    for target, role, member in members.values():
        assert role == "roles/run.invoker"
        fn = re.search(
            r"google_cloudfunctions2_function\.([a-z_]+)\.name", target
        ).group(1)
        by_function.setdefault(fn, set()).add(member)
    assert by_function["api"] == {"allUsers"}
    assert by_function["worker"] == {"${local.tasks_invoker_member}"}
    assert by_function["webhook_delivery"] == {"${local.tasks_invoker_member}"}
    assert by_function["webhook_trigger"] == {
        "${local.runtime_members.webhook_trigger}"
    }


def test_queues() -> None:
    queues = _tf()["resource"]["google_cloud_tasks_queue"]
    jobs_retry = _blocks(queues["jobs"], "retry_config")[0]
    assert _attr(jobs_retry, "max_attempts") == "${local.jobs_queue_max_attempts}"
    assert _attr(jobs_retry, "min_backoff") == "10s"
    assert _attr(jobs_retry, "max_backoff") == "300s"
    assert _attr(jobs_retry, "max_doublings") == 4
    hooks_retry = _blocks(queues["webhooks"], "retry_config")[0]
    assert _attr(hooks_retry, "max_attempts") == 25
    assert _attr(hooks_retry, "max_retry_duration") == "86400s"
    assert _resolve(_attr(queues["jobs"], "name")) == "image-jobs"
    assert _resolve(_attr(queues["webhooks"], "name")) == "webhook-deliveries"


def test_no_secret_values_in_terraform() -> None:
    resources = _tf()["resource"]
    assert "google_secret_manager_secret_version" not in resources
    secrets = resources["google_secret_manager_secret"]
    assert {_resolve(_attr(s, "secret_id")) for s in secrets.values()} == {
        "gemini-api-key",
        "webhook-secret",
    }
    for secret in secrets.values():
        replication = _blocks(secret, "replication")[0]
        assert "auto" in replication


def test_variables_and_outputs() -> None:
    tf = _tf()
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
    assert _val(tf["variable"]["gemini_model"]["default"]) == "gemini-3.1-flash-image"
    assert _val(tf["variable"]["image_retention_days"]["default"]) == 30


def _index_fields(body: dict) -> list[tuple[str, str]]:
    return [
        (_attr(f, "field_path"), _attr(f, "order")) for f in _blocks(body, "fields")
    ]


def test_firestore_indexes_json_matches_terraform() -> None:
    resources = _tf()["resource"]
    tf_indexes = sorted(
        (_resolve(_attr(body, "collection")), tuple(_index_fields(body)))
        for body in resources["google_firestore_index"].values()
    )
    assert tf_indexes == sorted(
        [
            ("image_jobs", (("owner", "ASCENDING"), ("created_at", "DESCENDING"))),
            ("image_jobs", (("owner", "ASCENDING"), ("created_at", "ASCENDING"))),
            (
                "image_jobs",
                (
                    ("owner", "ASCENDING"),
                    ("status", "ASCENDING"),
                    ("created_at", "DESCENDING"),
                ),
            ),
        ]
    )
    doc = json.loads(INDEXES_JSON.read_text(encoding="utf-8"))
    json_indexes = sorted(
        (i["collectionGroup"], tuple((f["fieldPath"], f["order"]) for f in i["fields"]))
        for i in doc["indexes"]
    )
    assert json_indexes == tf_indexes
    tf_ttl = sorted(
        (_resolve(_attr(body, "collection")), _resolve(_attr(body, "field")))
        for body in resources["google_firestore_field"].values()
        if _blocks(body, "ttl_config") or "ttl_config" in body
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
