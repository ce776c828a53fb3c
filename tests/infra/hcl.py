"""python-hcl2 view of the Terraform in infra/, shared by the infra tests.

Tolerant of python-hcl2 >= 5 (which keeps the quotes of strings and labels)
and of checkov's bc-python-hcl2 (which wraps every attribute value in a
one-element list); both install the ``hcl2`` module.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

def hcl2_module():
    try:
        import hcl2  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("python-hcl2 is not installed (pip install python-hcl2==8.1.4)")
    return hcl2


@lru_cache(maxsize=1)
def dialect() -> bool:
    """True when attribute values come wrapped in one-element lists."""
    probe = hcl2_module().loads('a = "x"\n')
    return isinstance(probe["a"], list)


def unquote(value: Any) -> Any:
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


def val(value: Any) -> Any:
    """An attribute value: unwrapped, unquoted; maps get unquoted keys."""
    if dialect() and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return val_inner(value)


def val_inner(value: Any) -> Any:
    value = unquote(value)
    if isinstance(value, dict):
        return {
            unquote(k): val_inner(v)
            for k, v in value.items()
            if not str(k).startswith("__")
        }
    if isinstance(value, list):
        return [val_inner(v) for v in value]
    return value


def attr(body: dict, name: str, default: Any = None) -> Any:
    return val(body[name]) if name in body else default


def blocks(body: dict, name: str) -> list[dict]:
    value = body.get(name, [])
    if isinstance(value, dict):
        return [value]
    return [b for b in value if isinstance(b, dict)]


def labeled(block_list: list) -> dict[str, dict]:
    """{label: body} of a list of single-label blocks (variable, output, ...)."""
    out: dict[str, dict] = {}
    for item in block_list:
        for label, body in item.items():
            if not str(label).startswith("__"):
                out[unquote(label)] = body
    return out


@lru_cache(maxsize=1)
def tf() -> dict[str, Any]:
    hcl2 = hcl2_module()
    files = sorted(INFRA.glob("*.tf"))
    assert files, "no .tf files in infra/"
    resources: dict[str, dict[str, dict]] = {}
    data: dict[str, dict[str, dict]] = {}
    locals_: dict[str, Any] = {}
    variables: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    for path in files:
        with path.open(encoding="utf-8") as fh:
            doc = hcl2.load(fh)
        for kind, into in (("resource", resources), ("data", data)):
            for item in doc.get(kind, []):
                for rtype, named in item.items():
                    for rname, body in named.items():
                        if not str(rname).startswith("__"):
                            into.setdefault(unquote(rtype), {})[unquote(rname)] = body
        for block in doc.get("locals", []):
            for key, value in block.items():
                if not str(key).startswith("__"):
                    locals_[key] = val(value)
        variables.update(labeled(doc.get("variable", [])))
        outputs.update(labeled(doc.get("output", [])))
    return {
        "resource": resources,
        "data": data,
        "locals": locals_,
        "variable": variables,
        "output": outputs,
    }


def resolve(text: Any, depth: int = 0) -> Any:
    """Resolve simple references (${local.x}, ${type.name.attr}) inside a string."""
    if not isinstance(text, str) or depth > 5:
        return text
    doc = tf()

    def repl(match: re.Match) -> str:
        ref = match.group(1).strip()
        parts = ref.split(".")
        if parts[0] == "local" and len(parts) == 2 and parts[1] in doc["locals"]:
            value = doc["locals"][parts[1]]
            return (
                str(resolve(value, depth + 1))
                if not isinstance(value, (dict, list))
                else match.group(0)
            )
        if (
            len(parts) == 3
            and parts[0] in doc["resource"]
            and parts[1] in doc["resource"][parts[0]]
        ):
            body = doc["resource"][parts[0]][parts[1]]
            if parts[2] in body:
                value = attr(body, parts[2])
                if isinstance(value, (str, int, float)):
                    return str(resolve(value, depth + 1))
        return match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9_.\[\]]+)\}", repl, text)


# The expressions of the two dynamic blocks of google_cloudfunctions2_function
# in functions.tf, which instance() expands as Terraform would.
SECRETS_FOR_EACH = "${{for key, secret in try(each.value.secrets, {}) : key => secret if secret != null}}"
TRIGGER_FOR_EACH = "${try(each.value.job_writes, false) ? [each.value.service_account] : []}"
# each.value, each.value.X, or try(each.value.X, default) where X is optional.
_EACH_VALUE = re.compile(r"(?:try\()?each\.value(?:\.(\w+))?(?:, ([^()]+)\))?")


def functions() -> dict[str, dict]:
    """{function: body}: the instances of the for_each resource of functions.tf
    (one per entry of the map local it iterates), as plain bodies."""
    out: dict[str, dict] = {}
    for body in tf()["resource"].get("google_cloudfunctions2_function", {}).values():
        ref = re.fullmatch(r"\$\{local\.(\w+)\}", str(attr(body, "for_each")))
        assert ref, "functions.tf: one google_cloudfunctions2_function with for_each = local.<map>"
        for key, entry in tf()["locals"][ref.group(1)].items():
            out[key] = instance(body, key, entry)
    return out


def instance(value: Any, key: str, entry: Any) -> Any:
    """One instance of a for_each resource body: each.key, each.value and
    each.value.X (or try(each.value.X, default)) substituted from one entry of
    the map, and the dynamic blocks of functions.tf expanded."""
    if isinstance(value, str):
        whole = re.fullmatch(r"\$\{(.*)\}", value)
        if whole and _EACH_VALUE.fullmatch(whole.group(1)):  # the attribute is the entry's value
            return _entry_value(entry, *_EACH_VALUE.fullmatch(whole.group(1)).groups())
        value = _EACH_VALUE.sub(  # inside an expression: the entry's expression text
            lambda m: _expression(_entry_value(entry, *m.groups())), value
        )
        return value.replace("${each.key}", key).replace("[each.key]", f'["{key}"]')
    if isinstance(value, list):
        return [instance(v, key, entry) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: instance(v, key, entry) for k, v in value.items() if k != "dynamic"}
    for dyn in blocks(value, "dynamic"):
        for label, dbody in dyn.items():
            label, content = unquote(label), blocks(dbody, "content")[0]
            if label == "secret_environment_variables":
                assert attr(dbody, "for_each") == SECRETS_FOR_EACH, attr(dbody, "for_each")
                out[label] = [
                    {**content, "key": name, "secret": secret}
                    for name, secret in entry.get("secrets", {}).items()
                    if secret is not None
                ]
            elif label == "event_trigger":
                assert attr(dbody, "for_each") == TRIGGER_FOR_EACH, attr(dbody, "for_each")
                if entry.get("job_writes", False):
                    out[label] = [{**content, "service_account_email": entry["service_account"]}]
            elif not str(label).startswith("__"):
                raise AssertionError(f"functions.tf: dynamic {label!r} is not expanded by tests/infra/hcl.py")
    return out


def _entry_value(entry: Any, name: str | None, default: str | None) -> Any:
    if name is None:
        return entry
    if default is None:
        return entry[name]
    if name in entry:
        return entry[name]
    try:
        return json.loads(default)
    except json.JSONDecodeError:  # an expression such as var.private_ingress
        return "${" + default + "}"


def _expression(value: Any) -> str:
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return json.dumps(value)


def env_of(body: dict) -> dict[str, str]:
    """Environment of one function: plain variables (through locals) + secrets."""
    service = blocks(body, "service_config")[0]
    env: dict[str, str] = {}
    raw = attr(service, "environment_variables", {})
    if isinstance(raw, dict):
        env.update(raw)
    else:  # "${local.a}" or "${merge(local.a, local.b)}"
        names = re.findall(r"local\.([A-Za-z0-9_]+)", str(raw))
        assert names, f"cannot read environment_variables expression {raw!r}"
        for name in names:
            value = tf()["locals"].get(name)
            assert isinstance(value, dict), (
                f"local.{name} used as environment map is not a map literal"
            )
            env.update(value)
    for block in blocks(service, "secret_environment_variables"):
        env[attr(block, "key")] = "secret:" + str(attr(block, "secret"))
    return env


def all_env_names() -> set[str]:
    names: set[str] = set()
    for body in functions().values():
        names |= set(env_of(body))
    return names
