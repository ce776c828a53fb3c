"""The ``imagegen`` CLI (clients/python) as a subprocess against the running stack."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from emulator.stack import Stack, free_port
from imagegen_client import ImageGenClient
from tests.conftest import API_BASE_URL
from tests.integration.helpers import create_job

ROOT = Path(__file__).resolve().parents[2]
IMAGEGEN = ROOT / ".venv" / "bin" / "imagegen"


def imagegen(*args: str, cwd: Path | None = None, url: str = API_BASE_URL, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(IMAGEGEN), *args], cwd=cwd, env=_env(url), capture_output=True, text=True, timeout=timeout)


def _env(url: str) -> dict[str, str]:
    """The installed console script, running this checkout's package (the shared venv's
    editable install may point at another checkout)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IMAGEGEN_URL": url, "COLUMNS": "120",
            "PYTHONPATH": str(ROOT / "clients" / "python" / "src")}


README_CLI_EXAMPLE = (
    'imagegen generate "Un chat astronaute" -n 2 --size 1792x1024 --format WEBP'
    " --style artistic --quality ultra -o out/"
)


def test_generate_downloads_the_images_and_prints_their_paths(stack: Stack, standin: Any, tmp_path: Path) -> None:
    assert README_CLI_EXAMPLE in (ROOT / "README.md").read_text(), "README's CLI example is this test's"
    standin.configure(latency_ms=300)
    done = imagegen(*shlex.split(README_CLI_EXAMPLE)[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    *paths, summary = done.stdout.splitlines()
    assert len(paths) == 2 and all(path.startswith("out/img_") for path in paths), done.stdout
    for path in paths:
        with Image.open(tmp_path / path) as decoded:
            assert (decoded.format, decoded.size) == ("WEBP", (1792, 1024))
    job_id = Path(paths[0]).name.split("_image_")[0]
    assert summary.startswith(f"{job_id}: 2 image(s) 1792x1024 WEBP, ") and "KiB" in summary
    assert "COMPLETED" in done.stderr and "100%" in done.stderr  # the progress bar's last frame

    assert imagegen("status", job_id).stdout.split()[:3] == [job_id, "COMPLETED", "100%"]
    result = imagegen("result", job_id)
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "COMPLETED"
    cancel = imagegen("cancel", job_id)
    assert (cancel.returncode, cancel.stderr.strip()) == (4, "imagegen: La tâche est déjà terminée (COMPLETED)")
    listed = imagegen("jobs", "--json", "--limit", "3")
    assert listed.returncode == 0 and job_id in [json.loads(line)["job_id"] for line in listed.stdout.splitlines()]


def test_json_prints_the_result_document_and_downloads_nothing(stack: Stack, standin: Any, tmp_path: Path) -> None:
    done = imagegen("generate", "Un phare", "--size", "512x512", "--format", "JPEG", "--seed", "42", "--json",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "COMPLETED" and document["images"][0]["dimensions"] == "512x512"
    assert document["images"][0]["format"] == "JPEG" and "metadata" in document
    assert document["images"][0]["seed"] == 42
    assert list(tmp_path.iterdir()) == []


def test_watch_follows_a_job_created_elsewhere(api: Any, standin: Any, tmp_path: Path) -> None:
    standin.configure(latency_ms=1000)
    job_id = create_job(api, size="512x512", format="PNG")
    done = imagegen("watch", job_id, "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    with Image.open(done.stdout.splitlines()[0]) as decoded:
        assert (decoded.format, decoded.size) == ("PNG", (512, 512))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["generate", ""], 4, "imagegen: Prompt requis"),
        (["generate", "Un phare", "--size", "10x10"], 4,
         "imagegen: size doit être l'une des valeurs : 512x512, 1024x1024, 1792x1024"),
        (["status", "img_doesnotexist00"], 4, "imagegen: Tâche introuvable"),
        (["generate", "pyclient-cli-failure"], 1, "imagegen: img_"),
    ],
    ids=["empty prompt", "bad size", "unknown job", "failed job"],
)
def test_failures_exit_non_zero_with_the_french_error_on_stderr(
    stack: Stack, standin: Any, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    standin.configure(faults=[{"kind": "invalid_key", "match": "pyclient-cli-failure", "times": None}])
    done = imagegen(*args, cwd=tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr.splitlines()[-1].startswith(message), done.stderr
    if args[-1] == "pyclient-cli-failure":
        assert done.stderr.splitlines()[-1].endswith(": Clé API Google invalide ou expirée")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_cancels_the_job_generate_created(standin: Any, make_key: Any, tmp_path: Path) -> None:
    standin.configure(latency_ms=20000)
    key = make_key(f"pyclient-cli-{uuid.uuid4().hex[:8]}")["Authorization"].removeprefix("Bearer ")
    env = _env(API_BASE_URL) | {"IMAGEGEN_API_KEY": key}
    process = subprocess.Popen([str(IMAGEGEN), "generate", "Un phare", "--size", "512x512"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with ImageGenClient(API_BASE_URL, key) as client:
        deadline = time.monotonic() + 30
        while not [job for job in client.jobs() if job.status.value == "GENERATING"]:
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        (job,) = list(client.jobs())
    assert process.returncode == 130, (stdout, stderr)
    assert stderr.splitlines()[-1] == "imagegen: interrompu, tâche(s) annulée(s)"
    assert job.status.value == "CANCELLED"


def test_unreachable_api_and_bad_usage_have_their_exit_codes(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = imagegen("status", "img_abcdefgh", url=nowhere)
    assert done.returncode == 5 and done.stderr.startswith("imagegen: GET "), done.stderr
    assert imagegen("generate", cwd=tmp_path).returncode == 2  # no prompt: argparse's usage error


def test_help_explains_itself_to_a_newcomer() -> None:
    done = imagegen("--help")
    assert done.returncode == 0
    for text in ("generate", "watch", "status", "result", "cancel", "jobs", "examples:", "exit codes:",
                 "IMAGEGEN_URL", "IMAGEGEN_API_KEY", README_CLI_EXAMPLE.split(" -n")[0]):
        assert text in done.stdout, text
    generate = imagegen("generate", "--help")
    assert generate.returncode == 0 and "--input-image URL" in generate.stdout and "1792x1024" in generate.stdout
