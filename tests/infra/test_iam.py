"""IAM follows the code: the table in iam_table.py against the code and the Terraform.

* Every Google API operation an entry point of functions/main.py can reach
  (tests/infra/code_calls.py) has a row in the table, and every row of a
  function is an operation its code really does.
* In every configuration of the bool variables the grants depend on, each
  row's permissions are granted to its principal at a scope that covers its
  resource, and each IAM binding in infra/ is used by at least one row.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pytest

from tests.infra import hcl
from tests.infra.code_calls import CLIENT_NODES, OPERATIONS, call_graph
from tests.infra.iam_table import CALLS, ROLE_PERMISSIONS, Call

# Operations that the Terraform, not the code, shows: checked against it below.
PLATFORM_OPERATIONS = {"secret.env", "eventarc.trigger", "invoke", "build"}

# <resource type>: (attribute naming what the grant is on, resource kind)
SCOPES = {
    "google_project_iam_member": (None, "project"),
    "google_storage_bucket_iam_member": ("bucket", "bucket"),
    "google_cloud_tasks_queue_iam_member": ("name", "queue"),
    "google_service_account_iam_member": ("service_account_id", "serviceAccount"),
    "google_secret_manager_secret_iam_member": ("secret_id", "secret"),
    "google_cloud_run_v2_service_iam_member": ("name", "service"),
    "google_artifact_registry_repository_iam_member": ("repository", "repository"),
}

_CONDITION = re.compile(r"^\$\{var\.(\w+) \? (1|0) : (1|0)\}$")
_SA = re.compile(r"google_service_account\.(\w+)\.email")
_REF = re.compile(r'google_\w+\.(\w+)(?:\["(\w+)"\])?')  # a resource, or one instance of a for_each


@dataclass(frozen=True)
class Binding:
    resource: str  # Terraform address, for messages
    principal: str
    role: str
    scope: str
    when: tuple[str, bool] | None  # (bool variable, value it needs)


def _principal(member: str) -> str:
    if member == "allUsers":
        return member
    ref = re.fullmatch(r'\$\{local\.(\w+)(?:\.(\w+)|\["(\w+)"\])?\}', member)
    if ref:
        value = hcl.tf()["locals"][ref.group(1)]
        entry = ref.group(2) or ref.group(3)
        member = value[entry] if entry else value
    found = _SA.search(member)
    assert found, f"cannot tell whose member {member!r} is"
    return found.group(1)


def _condition(body: dict) -> tuple[str, bool] | None:
    count = hcl.attr(body, "count")
    if count is None:
        return None
    match = _CONDITION.match(str(count))
    assert match and match.group(2) != match.group(3), (
        f"count {count!r}: write grants as `count = var.<bool> ? 1 : 0` so the IAM test can read them"
    )
    return match.group(1), match.group(2) == "1"


def _role_permissions(role: str) -> frozenset[str]:
    custom = re.fullmatch(r"\$\{google_project_iam_custom_role\.(\w+)\.(?:id|name)\}", role)
    if custom:
        body = hcl.tf()["resource"]["google_project_iam_custom_role"][custom.group(1)]
        return frozenset(hcl.attr(body, "permissions"))
    assert role in ROLE_PERMISSIONS, (
        f"role {role} is granted in infra/ but not in ROLE_PERMISSIONS of tests/infra/iam_table.py"
    )
    return ROLE_PERMISSIONS[role]


def bindings() -> list[Binding]:
    found: list[Binding] = []
    for rtype, resources in hcl.tf()["resource"].items():
        if "_iam_" not in rtype or rtype == "google_project_iam_custom_role":
            continue
        assert rtype in SCOPES, (
            f"{rtype}: use an additive *_iam_member resource of a kind listed in SCOPES (test_iam.py)"
        )
        attr_name, kind = SCOPES[rtype]
        for name, body in resources.items():
            # One grant, or one per entry of the map local it iterates.
            instances: dict[str | None, dict] = {None: body}
            if hcl.attr(body, "for_each") is not None:
                ref = re.fullmatch(r"\$\{local\.(\w+)\}", hcl.attr(body, "for_each"))
                assert ref, f"{rtype}.{name}: for_each must be a map local"
                instances = {
                    key: hcl.instance(body, key, entry)
                    for key, entry in hcl.tf()["locals"][ref.group(1)].items()
                }
            for key, grant in instances.items():
                scope = kind
                if attr_name:
                    target = _REF.search(str(hcl.attr(grant, attr_name)))
                    assert target, f"{rtype}.{name}: {attr_name} must reference a Terraform resource"
                    scope = f"{kind}:{target.group(2) or target.group(1)}"
                address = f"{rtype}.{name}" + (f'["{key}"]' if key is not None else "")
                found.append(
                    Binding(address, _principal(hcl.attr(grant, "member")), hcl.attr(grant, "role"), scope, _condition(body))
                )
    return found


def _variables() -> list[str]:
    names = {b.when[0] for b in bindings() if b.when}
    names |= {c.when.removeprefix("not ") for c in CALLS if c.when}
    return sorted(names)


def _active_call(call: Call, config: dict[str, bool]) -> bool:
    if call.when is None:
        return True
    negated = call.when.startswith("not ")
    return config[call.when.removeprefix("not ")] != negated


def _configurations() -> list[dict[str, bool]]:
    names = _variables()
    return [dict(zip(names, values)) for values in itertools.product([False, True], repeat=len(names))]


def _covers(scope: str, resource: str) -> bool:
    return scope == "project" or scope == resource


def _deployed_functions() -> dict[str, str]:
    """Terraform function name (= its runtime SA name) -> entry point."""
    return {
        name: hcl.attr(hcl.blocks(body, "build_config")[0], "entry_point")
        for name, body in hcl.functions().items()
    }


def test_client_nodes_name_code_that_exists() -> None:
    missing = set(CLIENT_NODES) - set(call_graph().nodes)
    assert not missing, f"CLIENT_NODES (tests/infra/code_calls.py) names {sorted(missing)}: not in functions/"


def test_table_is_well_formed() -> None:
    variables = set(hcl.tf()["variable"])
    for call in CALLS:
        assert call.operation in OPERATIONS | PLATFORM_OPERATIONS, call
        assert call.resource == "project" or ":" in call.resource, call
        if call.when:
            assert call.when.removeprefix("not ") in variables, f"{call}: unknown variable"


@pytest.mark.parametrize("function", sorted(_deployed_functions()))
def test_every_call_of_the_code_has_a_row_and_every_row_a_call(function: str) -> None:
    entry_point = _deployed_functions()[function]
    in_code = call_graph().operations(entry_point)
    in_table = {c.operation for c in CALLS if c.principal == function and c.operation in OPERATIONS}
    missing = {op: sorted(sites) for op, sites in in_code.items() if op not in in_table}
    assert not missing, (
        f"{function} reaches {missing} but the IAM table (tests/infra/iam_table.py) has no row for it: add one"
    )
    stale = in_table - set(in_code)
    assert not stale, f"the IAM table says {function} does {sorted(stale)}, but its code never does"


def test_platform_rows_match_the_terraform() -> None:
    functions = hcl.functions()
    for name, body in functions.items():
        service = hcl.blocks(body, "service_config")[0]
        has_secret = bool(hcl.blocks(service, "secret_environment_variables"))
        rows = {c.operation for c in CALLS if c.principal == name}
        assert has_secret == ("secret.env" in rows), f"{name}: secret env vars need a secret.env row"
        has_trigger = bool(hcl.blocks(body, "event_trigger"))
        assert has_trigger == ("eventarc.trigger" in rows), f"{name}: Eventarc trigger needs its rows"


@pytest.mark.parametrize("config", _configurations(), ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_grants_cover_every_call_and_nothing_unused(config: dict[str, bool]) -> None:
    active = [b for b in bindings() if b.when is None or config[b.when[0]] == b.when[1]]
    calls = [c for c in CALLS if _active_call(c, config)]
    for call in calls:
        for permission in call.permissions:
            assert any(
                b.principal == call.principal
                and _covers(b.scope, call.resource)
                and permission in _role_permissions(b.role)
                for b in active
            ), f"{call.principal} needs {permission} on {call.resource} ({call.why}): no binding in infra/ grants it"
    for binding in active:
        used = any(
            call.principal == binding.principal
            and _covers(binding.scope, call.resource)
            and set(call.permissions) & _role_permissions(binding.role)
            for call in calls
        )
        assert used, (
            f"{binding.resource} grants {binding.role} on {binding.scope} to {binding.principal}, "
            "but no row of tests/infra/iam_table.py needs it: remove the grant or add the call"
        )


def test_custom_roles_hold_only_used_permissions() -> None:
    custom = hcl.tf()["resource"].get("google_project_iam_custom_role", {})
    for name in custom:
        role = f"${{google_project_iam_custom_role.{name}.id}}"
        holders = {(b.principal, b.scope) for b in bindings() if b.role == role}
        assert holders, f"custom role {name} is granted to nobody"
        used = {
            p
            for c in CALLS
            for principal, scope in holders
            if c.principal == principal and _covers(scope, c.resource)
            for p in c.permissions
        }
        extra = _role_permissions(role) - used
        assert not extra, f"custom role {name} holds permissions no call needs: {sorted(extra)}"


def test_public_image_urls_never_allow_listing_the_bucket() -> None:
    public = [b for b in bindings() if b.principal == "allUsers"]
    assert public, "expected the public api invoker binding"
    for binding in public:
        perms = _role_permissions(binding.role)
        assert "storage.objects.list" not in perms, f"{binding.resource}: allUsers could list {binding.scope}"
        assert perms <= {"storage.objects.get", "run.routes.invoke"}, binding
