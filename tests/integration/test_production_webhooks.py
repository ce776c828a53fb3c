"""Webhook secrets as production scopes them, on a second stack with ``ENVIRONMENT=production``.

The session's stack runs in development, where no ``X-Webhook-Secret`` is sent
at all; this module starts its own stack (ports: the session's offset + 50)
with the operator's ``WEBHOOK_URL`` on, ``WEBHOOK_SECRET`` set and
``AUTH_REQUIRED=false``, two tenants' API keys, and a loopback receiver for
the operator's URL and for the tenants' per-job URLs. It checks what each
receiver gets: the operator's URL the seed's header and the operator's
signature; a per-job URL no ``X-Webhook-Secret`` and only its owner's
signature, with the secret ``GET /api/webhooks/secret`` gives that owner.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import standardwebhooks

from emulator.stack import PORT_OFFSET, Stack, port_in_use
from imagegen.api.keys import hash_key, new_key
from tests.conftest import ROOT, TEST_OVERRIDES, ApiClient, running
from tests.loopback import Received, Receiver

OPERATOR_SECRET = "operator-webhook-secret-2025"
KEYS = {"alice": new_key(), "bob": new_key()}



@pytest.fixture(scope="module")
def operator_url(receiver: Receiver) -> str:
    return receiver.url()


@pytest.fixture(scope="module")
def production(receiver: Receiver, operator_url: str) -> Iterator[Stack]:
    overrides = TEST_OVERRIDES | {
        "ENVIRONMENT": "production",
        "AUTH_REQUIRED": "false",
        "WEBHOOK_ENABLED": "true",
        "WEBHOOK_URL": operator_url,
        "WEBHOOK_SECRET": OPERATOR_SECRET,
        "API_KEY_HASHES": ",".join(f"{owner}:{hash_key(key)}" for owner, key in KEYS.items()),
    }
    stack = Stack(ROOT, overrides=overrides, log_dir=ROOT / ".stack" / "test-logs-production",
                  port_offset=PORT_OFFSET + 50)  # fmt: skip
    if port_in_use(stack.ports["api"]):
        pytest.fail(f"port {stack.ports['api']} (the production stack's API) is in use", pytrace=False)
    yield from running(stack, "the production stack")


@pytest.fixture
def api(production: Stack) -> Iterator[ApiClient]:
    client = ApiClient(production.urls["api"])
    try:
        yield client
    finally:
        client.close()


def as_owner(owner: str | None) -> dict[str, str]:
    return {"X-API-Key": KEYS[owner]} if owner else {}


def owner_secret(api: ApiClient, owner: str | None) -> str:
    response = api.get("/api/webhooks/secret", headers=as_owner(owner))
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()["secret"]


def completed_hook(api: ApiClient, receiver: Receiver, url: str, owner: str | None, **fields: Any) -> Received:
    """Create a job as ``owner``, wait for it, and return the one webhook ``url`` got for it."""
    body = {"prompt": "Un phare en production", "num_images": 1, "size": "512x512"} | fields
    response = api.post("/api/images/generate", json=body, headers=as_owner(owner))
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert api.wait_for_job(job_id, headers=as_owner(owner))["status"] == "COMPLETED"
    deadline = time.monotonic() + 30
    while not (hooks := [hook for hook in receiver.received(url) if hook.json()["job_id"] == job_id]):
        assert time.monotonic() < deadline, f"no webhook for {job_id} on {url}"
        time.sleep(0.1)
    [hook] = hooks
    return hook


def headers_lower(hook: Received) -> dict[str, str]:
    return {name.lower(): value for name, value in hook.headers.items()}


def refuses(key: str | bytes, hook: Received) -> bool:
    try:
        standardwebhooks.Webhook(key).verify(hook.body, hook.headers)
    except standardwebhooks.WebhookVerificationError:
        return True
    return False


def test_the_operator_url_gets_the_seed_header_and_the_operator_signature(
    api: ApiClient, receiver: Receiver, operator_url: str
) -> None:
    hook = completed_hook(api, receiver, operator_url, None)
    assert headers_lower(hook)["x-webhook-secret"] == OPERATOR_SECRET
    payload = standardwebhooks.Webhook(OPERATOR_SECRET.encode()).verify(hook.body, hook.headers)
    assert (payload["status"], payload["environment"]) == ("completed", "production")


@pytest.mark.parametrize("owner", ["alice", None])
def test_a_per_job_url_gets_only_its_owners_signature(
    api: ApiClient, receiver: Receiver, operator_url: str, owner: str | None
) -> None:
    tenant_url = receiver.url()
    operator_before = len(receiver.received(operator_url))
    hook = completed_hook(api, receiver, tenant_url, owner, webhook_url=tenant_url)
    headers = headers_lower(hook)
    assert "x-webhook-secret" not in headers
    assert OPERATOR_SECRET not in " ".join(headers.values())
    assert standardwebhooks.Webhook(owner_secret(api, owner)).verify(hook.body, hook.headers)["status"] == "completed"
    assert refuses(OPERATOR_SECRET.encode(), hook)
    others = [name for name in ("alice", "bob", None) if name != owner]
    assert all(refuses(owner_secret(api, other), hook) for other in others)
    assert len(receiver.received(operator_url)) == operator_before  # the job's own URL wins


def test_secrets_are_per_owner_and_rotation_keeps_the_old_key_for_a_while(
    api: ApiClient, receiver: Receiver
) -> None:
    before = {name: owner_secret(api, name) for name in ("alice", "bob", None)}
    assert len(set(before.values())) == 3 and all(s.startswith("whsec_") for s in before.values())
    assert owner_secret(api, "alice") == before["alice"]  # created once, then read

    rotated = api.post("/api/webhooks/secret/rotate", headers=as_owner("alice"))
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"] not in before.values()
    assert body["rotated_at"] and body["previous_secret_expires_at"] > body["rotated_at"]
    assert owner_secret(api, "alice") == body["secret"]
    assert {name: owner_secret(api, name) for name in ("bob", None)} == {"bob": before["bob"], None: before[None]}

    tenant_url = receiver.url()
    hook = completed_hook(api, receiver, tenant_url, "alice", webhook_url=tenant_url)
    assert len(hook.headers["webhook-signature"].split(" ")) == 2  # new and previous key
    for key in (body["secret"], before["alice"]):
        standardwebhooks.Webhook(key).verify(hook.body, hook.headers)
    assert refuses(before["bob"], hook)


def test_secret_routes_are_in_the_openapi_document(api: ApiClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/api/webhooks/secret"]) == {"get"}
    assert set(paths["/api/webhooks/secret/rotate"]) == {"post"}
