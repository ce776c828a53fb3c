"""The local stack is up and wired as the functions expect."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import requests

from emulator.stack import FUNCTIONS, FUNCTIONS_VENV, PORTS, Stack, tcp_answers
from tests.tokens import cloud_tasks_token


def test_api_health_answers_json(stack: Stack) -> None:
    resp = requests.get(stack.urls["health"], timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert isinstance(resp.json(), dict)


def test_functions_get_the_stack_environment(stack: Stack) -> None:
    env = stack.env
    assert env["FIRESTORE_EMULATOR_HOST"] == f"127.0.0.1:{PORTS['firestore']}"
    assert env["STORAGE_EMULATOR_HOST"] == f"http://127.0.0.1:{PORTS['storage']}"
    assert env["CLOUD_TASKS_EMULATOR_HOST"] == f"127.0.0.1:{PORTS['tasks_http']}"  # the REST API
    assert env["TASKS_SERVICE_ACCOUNT"].endswith(".iam.gserviceaccount.com")
    assert env["OIDC_CERTS_URL"] == f"http://127.0.0.1:{PORTS['tasks_oidc']}/oauth2/v1/certs"
    assert "TASKS_SHARED_SECRET" not in env
    # The tests never reach real Google: the stand-in is the Gemini backend.
    assert stack.gemini_backend == "stand-in"
    assert env["GEMINI_STANDIN_URL"] == f"http://127.0.0.1:{PORTS['gemini_standin']}"
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        assert name not in env
    assert env["ALLOW_PRIVATE_IMAGE_URLS"] == "true"
    assert env["WEBHOOK_ENABLED"] == "false"


def test_firestore_emulator_round_trip(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    resp = requests.get(stack.urls["firestore"] + "/", timeout=10)
    assert resp.status_code == 200 and resp.text.strip() == "Ok"

    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
    client = firestore.Client(project=stack.project)
    ref = client.collection("_stack_smoke").document(uuid.uuid4().hex)
    ref.set({"hello": "emulator"})
    assert ref.get().to_dict() == {"hello": "emulator"}
    ref.delete()
    assert not ref.get().exists


def test_storage_emulator_has_the_bucket(stack: Stack) -> None:
    resp = requests.get(f"{stack.urls['storage']}/storage/v1/b/{stack.bucket}", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "imagegen-local-images"
    missing = requests.get(f"{stack.urls['storage']}/storage/v1/b/no-such-bucket-{uuid.uuid4().hex[:8]}", timeout=10)
    assert missing.status_code == 404


def test_tasks_emulator_has_both_queues(stack: Stack) -> None:
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import (
        CloudTasksGrpcTransport,
    )

    channel = grpc.insecure_channel(stack.urls["tasks"])
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        parent = f"projects/{stack.project}/locations/{stack.location}"
        names = {q.name for q in client.list_queues(parent=parent, timeout=10)}
    finally:
        channel.close()
    assert names == {
        "projects/imagegen-local/locations/us-central1/queues/image-jobs",
        "projects/imagegen-local/locations/us-central1/queues/webhook-deliveries",
    }


def test_gemini_standin_health(stack: Stack) -> None:
    resp = requests.get(stack.urls["gemini_standin"] + "/_standin/health", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "stand_in": True}


def test_every_function_port_answers(stack: Stack) -> None:
    for name in ("api", "worker", "webhook_trigger", "webhook_delivery"):
        assert stack.is_running(name), name
        assert tcp_answers(stack.ports[name]), name


def test_every_function_process_runs_on_the_functions_venv(stack: Stack) -> None:
    """The interpreter of each running function is the lock-only venv's (its console script's shebang),
    never ``.venv``'s, whose dev tools would let an import the lock lacks pass here."""
    interpreter = (stack.root / FUNCTIONS_VENV / "bin").resolve()  # a worktree's venv can be a symlink
    for name in FUNCTIONS:
        pid = stack.pid(name)
        assert pid is not None, name
        python, script, *_ = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert (Path(python).parent.resolve(), Path(script).resolve()) == (
            interpreter, interpreter / "functions-framework"
        ), name


def test_killed_worker_comes_back_on_restart(stack: Stack) -> None:
    port = stack.ports["worker"]
    old_pid = stack.pid("worker")
    assert old_pid is not None and tcp_answers(port)
    starts_before = stack.log_path("worker").read_text().count("starting worker")

    stack.kill("worker")
    assert stack.pid("worker") is None
    with pytest.raises(ProcessLookupError):
        os.killpg(old_pid, 0)  # gunicorn's master and workers are all gone
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    started = time.monotonic()
    stack.restart("worker")
    new_pid = stack.pid("worker")
    assert new_pid is not None and new_pid != old_pid
    assert tcp_answers(port)
    assert time.monotonic() - started < 60
    # The restarted worker is the real function, checking this stack's OIDC tokens.
    resp = requests.post(stack.urls["worker"] + "/", json={}, timeout=10)
    assert resp.status_code == 401, resp.text
    resp = requests.post(
        stack.urls["worker"] + "/",
        json={},  # malformed task body: dropped (200) once the caller is authenticated
        headers={"Authorization": f"Bearer {cloud_tasks_token(stack, stack.env['WORKER_URL'])}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert stack.log_path("worker").read_text().count("starting worker") == starts_before + 1
