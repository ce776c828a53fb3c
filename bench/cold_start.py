"""Cold start of the real entry points; prints figures as ratios to the goals, never fails.

Needs the local stack running (``make up``, or ``STACK_PORT_OFFSET=N make up``): each
run spawns a fresh functions-framework process, the way an instance scaled up from
zero starts, against the stack's emulators. Every process measured, the entry points
and the baselines alike, runs from ``.venv-functions`` (the lock alone, as deployed):
both sides of each ratio load the same interpreter and packages, and none of ``.venv``'s
dev tools, which libraries import when they find them. Minimum of ``--runs`` runs each:

* a bare functions-framework function (the baseline): process start to its first 200;
* ``api``: process start to the first 202 on ``POST /api/images/generate``
  (goal: at most 2.0x the baseline);
* ``import functions_framework`` alone, and everything the ``worker`` process imports
  up to the end of its first job (a 1-image job written to Firestore, its task
  delivered by hand with a token from the stack's Tasks emulator key, so the OIDC
  check counts), both summed from ``python -X importtime`` (goal: at most 3.0x).

Two floors show what the goals leave for the service's own code:

* the api's floor: a function with no service code that uses what a create must (it
  validates a pydantic model, imports google-auth and httpx2, and makes the create's
  three round trips, here three Firestore commits), start to its first 200;
* the worker's floor: ``import functions_framework, google.genai`` summed, as above.

``--imports`` also prints, per entry point, what its first request imports and what
that costs (the README's table).

    python bench/cold_start.py [--runs 5] [--imports]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "functions"))

from emulator.stack import PORTS, Stack, free_port, function_argv, functions_bin, tcp_answers  # noqa: E402

BARE_SOURCE = '''import functions_framework


@functions_framework.http
def hello(request):
    return "ok"
'''
# What a create needs and nothing of the service: validation, credentials' library, the
# HTTP client, and the create's round trips (the job, its task, ``queued_at``).
FLOOR_SOURCE = '''import os
import uuid

import functions_framework


@functions_framework.http
def floor(request):
    import google.auth.transport
    import httpx2
    import pydantic

    class Request(pydantic.BaseModel):
        prompt: str

    Request.model_validate(request.get_json())
    root = f"projects/{os.environ['GOOGLE_CLOUD_PROJECT']}/databases/(default)/documents"
    url = f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/v1/{root}:commit"
    with httpx2.Client() as client:
        for _ in range(3):
            name = f"{root}/cold_start_floor/{uuid.uuid4().hex}"
            write = {"update": {"name": name, "fields": {"prompt": {"stringValue": "x"}}}}
            client.post(url, json={"writes": [write]}, headers={"Authorization": "Bearer owner"}).raise_for_status()
    return "ok"
'''
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


class _Process:
    """A functions-framework process in its own group; its stderr goes to a file.

    (A pipe left unread would fill up with the import profile and block the process.)
    """

    def __init__(self, source: str, target: str, port: int, env: dict[str, str], importtime: bool) -> None:
        argv = function_argv(ROOT, target, port, source)
        extra = {"PYTHONPROFILEIMPORTTIME": "1"} if importtime else {}
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            argv, cwd=ROOT, env=env | extra, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True,
        )

    def stop(self) -> str:
        """Stop the process group; its stderr (the import profile, if asked for)."""
        os.killpg(self._proc.pid, 15)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, 9)
            self._proc.wait()
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        self._stderr.close()
        return text


def _first_answer(port: int, send: Callable[[str], requests.Response], timeout: float = 60) -> requests.Response:
    """Retry ``send`` until the process answers (connection refused until it listens)."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tcp_answers(port, timeout=0.05):
            try:
                return send(base)
            except requests.ConnectionError:
                pass
        time.sleep(0.005)
    raise TimeoutError(f"nothing answered on {port}")


def time_to_first(
    source: str, target: str, env: dict[str, str], send: Callable[[str], requests.Response], expect: int
) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = _Process(source, target, port, env, importtime=False)
    try:
        response = _first_answer(port, send)
        elapsed = time.perf_counter() - started
    finally:
        proc.stop()
    if response.status_code != expect:
        raise RuntimeError(f"{target}: first answer {response.status_code}, expected {expect}: {response.text[:200]}")
    return elapsed


def import_profile(stderr: str) -> list[tuple[str, float]]:
    """(module, cumulative ms) of each top-level import in a ``-X importtime`` log."""
    profile = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and not match[3]:
            profile.append((match[4], int(match[2]) / 1000))
    return profile


def import_ms(modules: str = "functions_framework") -> float:
    """CPU ms of ``import <modules>`` in a fresh interpreter of the functions' venv."""
    result = subprocess.run(
        [functions_bin(ROOT, "python"), "-X", "importtime", "-c", f"import {modules}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return sum(ms for _, ms in import_profile(result.stderr))


def _new_job() -> str:
    """A PENDING 1-image job written to the stack's Firestore, with no task queued."""
    from imagegen import job_store

    job = job_store.new_job(
        {"prompt": "Démarrage à froid", "input_image_url": None, "num_images": 1, "size": "512x512",
         "format": "PNG", "style": "photorealistic", "quality": "standard"},
        owner="anonymous", webhook=None, trace="",
    )
    job_store.create_job(job)
    return str(job["job_id"])


def worker_first_job(stack: Stack) -> list[tuple[str, float]]:
    """Import profile of a fresh worker process through its first (real) job, OIDC check included."""
    from emulator.cloud_tasks.oidc import TokenMinter

    env = stack.env
    token = TokenMinter.from_key_file(stack.tasks_oidc_key_file).token(env["TASKS_SERVICE_ACCOUNT"], env["WORKER_URL"])
    port = free_port()
    job_id = _new_job()
    proc = _Process("functions/main.py", "worker", port, env, importtime=True)
    try:
        response = _first_answer(
            port,
            lambda base: requests.post(
                f"{base}/", json={"job_id": job_id},
                headers={"Authorization": f"Bearer {token}", "X-CloudTasks-TaskName": job_id}, timeout=60,
            ),
        )
    finally:
        stderr = proc.stop()
    if response.json().get("outcome") != "completed":
        raise RuntimeError(f"worker's first job: {response.status_code} {response.text[:200]}")
    return import_profile(stderr)


def api_first_create(env: dict[str, str]) -> list[tuple[str, float]]:
    port = free_port()
    proc = _Process("functions/main.py", "api", port, env, importtime=True)
    try:
        _first_answer(port, _create)
    finally:
        stderr = proc.stop()
    return import_profile(stderr)


def _create(base: str) -> requests.Response:
    return requests.post(f"{base}/api/images/generate", json={"prompt": "Démarrage à froid", "size": "512x512"},
                         timeout=60)


def _summary(profile: list[tuple[str, float]]) -> str:
    """Top-level imports grouped by package, biggest first."""
    groups: collections.defaultdict[str, float] = collections.defaultdict(float)
    for name, ms in profile:
        groups[name if name.startswith("imagegen") or name == "main" else name.split(".")[0]] += ms
    biggest = sorted(groups.items(), key=lambda item: -item[1])[:12]
    return ", ".join(f"{name} {ms:.0f}" for name, ms in biggest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--imports", action="store_true", help="print what each entry point imports")
    args = parser.parse_args()
    if not tcp_answers(PORTS["firestore"]) or not tcp_answers(PORTS["tasks"]):
        print(f"the local stack is not running on these ports (Firestore {PORTS['firestore']}): `make up` first")
        return
    if not Path(functions_bin(ROOT, "functions-framework")).exists():
        print(f"no {functions_bin(ROOT, 'functions-framework')}: `make setup` first")
        return
    stack = Stack(ROOT)
    env = stack.env
    os.environ.update({k: v for k, v in env.items() if k.endswith("_EMULATOR_HOST") or k == "GOOGLE_CLOUD_PROJECT"})
    load = os.getloadavg()[0]
    print(f"cold start, min of {args.runs} runs (load average {load:.1f} on {os.cpu_count()} cores)")
    # Each baseline run is next to the run it is compared with: both see the same load.
    bare_runs, floor_runs, api_runs, bare_imports, floor_imports, worker_profiles = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        bare, floor = Path(tmp) / "bare.py", Path(tmp) / "floor.py"
        bare.write_text(BARE_SOURCE)
        floor.write_text(FLOOR_SOURCE)
        get = lambda base: requests.get(f"{base}/", timeout=30)  # noqa: E731
        post = lambda base: requests.post(f"{base}/", json={"prompt": "x"}, timeout=30)  # noqa: E731
        for _ in range(args.runs):
            bare_runs.append(time_to_first(str(bare), "hello", env, get, 200))
            floor_runs.append(time_to_first(str(floor), "floor", env, post, 200))
            api_runs.append(time_to_first("functions/main.py", "api", env, _create, 202))
            bare_imports.append(import_ms())
            floor_imports.append(import_ms("functions_framework, google.genai"))
            worker_profiles.append(worker_first_job(stack))
    bare_s, floor_s, api_s = min(bare_runs), min(floor_runs), min(api_runs)
    bare_ms, floor_ms = min(bare_imports), min(floor_imports)
    worker_ms = min(sum(ms for _, ms in profile) for profile in worker_profiles)
    print(f"  bare functions-framework function, start to first 200: {bare_s * 1000:.0f} ms")
    print(f"  api's floor (pydantic, google-auth, httpx2, 3 round trips; no service code): {floor_s * 1000:.0f} ms "
          f"= {floor_s / bare_s:.2f}x")
    print(f"  api, start to first 202 on POST /api/images/generate:  {api_s * 1000:.0f} ms "
          f"= {api_s / bare_s:.2f}x the bare function (goal <= 2.0x)")
    print(f"  import functions_framework alone: {bare_ms:.0f} ms")
    print(f"  worker's floor, import functions_framework, google.genai: {floor_ms:.0f} ms = {floor_ms / bare_ms:.2f}x")
    print(f"  worker, every import up to the end of its first job: {worker_ms:.0f} ms "
          f"= {worker_ms / bare_ms:.2f}x a bare import functions_framework (goal <= 3.0x)")
    if args.imports:
        best = min(worker_profiles, key=lambda profile: sum(ms for _, ms in profile))
        print(f"  worker imports (ms): {_summary(best)}")
        print(f"  api imports through its first create (ms): {_summary(api_first_create(env))}")


if __name__ == "__main__":
    main()
