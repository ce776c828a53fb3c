"""``infra/firestore.rules`` on the stack's Firestore emulator, as Firebase clients meet them.

The stack loads the rules into the emulator. Jobs are created through the API
with Firebase ID tokens (signed by a loopback issuer, so the API stores them
under ``owner = "firebase:<uid>"``); Firestore is then called as those users
with the emulator's unsigned ID tokens (``alg: none``), over REST and with a
real listener (google-cloud-firestore's ``on_snapshot`` with the token as
credentials). The functions' own server SDK is not subject to the rules:
every other integration test runs on this same rule-loaded emulator.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials

from emulator.stack import Stack
from tests.integration.helpers import side_api
from tests.tokens import CertServer, TokenSigner, firebase_claims, unsigned_jwt


@dataclass(frozen=True)
class Jobs:
    alice: str
    bob: str
    anonymous: str


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> Iterator[Jobs]:
    """One finished job each for Firebase users alice and bob, and one anonymous job."""
    signer = TokenSigner()
    certs = CertServer({signer.kid: signer.cert_pem})
    env = stack.env | {"FIREBASE_AUTH_ENABLED": "true", "FIREBASE_CERTS_URL": certs.url}
    try:
        with side_api(env) as base:

            def create(headers: dict[str, str]) -> str:
                response = requests.post(
                    f"{base}/api/images/generate", json={"prompt": "Règles"}, headers=headers, timeout=30
                )
                assert response.status_code == 202, response.text
                return response.json()["job_id"]

            def as_user(uid: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {signer.sign(firebase_claims(stack.project, uid))}"}

            created = Jobs(create(as_user("alice")), create(as_user("bob")), create({}))
            for job_id, headers in ((created.alice, as_user("alice")), (created.bob, as_user("bob"))):
                deadline = time.monotonic() + 60
                while requests.get(f"{base}/api/images/status/{job_id}", headers=headers, timeout=10).json()[
                    "status"
                ] != "COMPLETED":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            yield created
    finally:
        certs.close()


def _token(stack: Stack, uid: str) -> str:
    return unsigned_jwt(firebase_claims(stack.project, uid))


def _call(stack: Stack, method: str, path: str, uid: str | None, **kwargs: Any) -> requests.Response:
    """A Firestore REST call as Firebase user ``uid`` (None: a client that is not signed in)."""
    url = f"{stack.urls['firestore']}/v1/projects/{stack.project}/databases/(default)/documents{path}"
    headers = {"Authorization": f"Bearer {_token(stack, uid)}"} if uid else {}
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def _owner_query(owner: str) -> dict[str, Any]:
    where = {"fieldFilter": {"field": {"fieldPath": "owner"}, "op": "EQUAL", "value": {"stringValue": owner}}}
    return {"structuredQuery": {"from": [{"collectionId": "image_jobs"}], "where": where}}


def test_a_user_reads_their_own_jobs_and_nothing_else(stack: Stack, jobs: Jobs) -> None:
    own = _call(stack, "GET", f"/image_jobs/{jobs.alice}", "alice")
    assert own.status_code == 200, own.text
    fields = own.json()["fields"]
    assert fields["owner"] == {"stringValue": "firebase:alice"}
    assert fields["status"] == {"stringValue": "COMPLETED"}
    for uid, job_id in (("bob", jobs.alice), (None, jobs.alice), ("alice", jobs.bob), ("alice", jobs.anonymous)):
        refused = _call(stack, "GET", f"/image_jobs/{job_id}", uid)
        assert refused.status_code == 403, (uid, job_id, refused.text)
    # Queries: only one filtered on the caller's own owner value.
    listed = _call(stack, "POST", ":runQuery", "alice", json=_owner_query("firebase:alice"))
    assert listed.status_code == 200, listed.text
    names = [row["document"]["name"].rsplit("/", 1)[-1] for row in listed.json() if "document" in row]
    assert jobs.alice in names and jobs.bob not in names
    everything = {"structuredQuery": {"from": [{"collectionId": "image_jobs"}]}}
    for uid, query in (("alice", everything), ("bob", _owner_query("firebase:alice")), (None, everything)):
        assert _call(stack, "POST", ":runQuery", uid, json=query).status_code == 403, uid
    # Nothing else in the database: webhook records, API keys, idempotency keys, other collections.
    for path in (
        f"/image_jobs/{jobs.alice}/webhook_deliveries/any",
        "/api_keys/any",
        "/idempotency_keys/any",
        "/other/any",
    ):
        assert _call(stack, "GET", path, "alice").status_code == 403, path


def test_nobody_writes(stack: Stack, jobs: Jobs) -> None:
    status = {"fields": {"status": {"stringValue": "COMPLETED"}, "owner": {"stringValue": "firebase:alice"}}}
    for uid in ("alice", "bob", None):
        update = _call(
            stack, "PATCH", f"/image_jobs/{jobs.alice}", uid, params={"updateMask.fieldPaths": "status"}, json=status
        )
        assert update.status_code == 403, (uid, update.text)
        created = _call(stack, "POST", "/image_jobs", uid, params={"documentId": f"img_forged{uid or 'anon'}0"}, json=status)
        assert created.status_code == 403, (uid, created.text)
        assert _call(stack, "DELETE", f"/image_jobs/{jobs.alice}", uid).status_code == 403, uid
        assert _call(stack, "PATCH", "/api_keys/forged", uid, json={"fields": {}}).status_code == 403, uid
    still = _call(stack, "GET", f"/image_jobs/{jobs.alice}", "alice")
    assert still.status_code == 200 and still.json()["fields"]["status"] == {"stringValue": "COMPLETED"}


def _listen(stack: Stack, uid: str, job_id: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, queue.Queue[Any]]:
    """A Firestore listener (the SDK's Listen stream) on the job as Firebase user ``uid``.

    On the emulator the SDK sends ``authorization: Bearer owner`` (which bypasses
    the rules) as call metadata whatever its credentials say (the ``id_token``
    it reads goes into a channel option, which gRPC ignores), so the call
    metadata is set here to the user's ID token.
    """
    from google.cloud import firestore
    from google.cloud.firestore_v1 import _helpers

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
    client = firestore.Client(project=stack.project, credentials=AnonymousCredentials())
    client._rpc_metadata_internal = [
        *_helpers.metadata_with_prefix(client._database_string),
        ("authorization", f"Bearer {_token(stack, uid)}"),
    ]
    received: queue.Queue[Any] = queue.Queue()
    watch = client.collection("image_jobs").document(job_id).on_snapshot(
        lambda snapshots, _changes, _read_time: received.put(snapshots)
    )
    return watch, received


def test_the_owner_can_listen_and_others_cannot(stack: Stack, jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    watch, received = _listen(stack, "alice", jobs.alice, monkeypatch)
    try:
        (snapshot,) = received.get(timeout=10)
        assert snapshot.get("owner") == "firebase:alice" and snapshot.get("status") == "COMPLETED"
    finally:
        watch.unsubscribe()
    for uid, job_id in (("bob", jobs.alice), ("alice", jobs.anonymous)):
        watch, received = _listen(stack, uid, job_id, monkeypatch)
        try:
            deadline = time.monotonic() + 10
            while watch.is_active:  # the emulator ends the Listen with PERMISSION_DENIED
                assert time.monotonic() < deadline, f"{uid} is still listening to {job_id}"
                time.sleep(0.1)
            assert received.empty(), f"{uid} received {job_id}"
        finally:
            watch.unsubscribe()
