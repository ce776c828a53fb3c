"""The committed linter and type-checker configurations pass on the whole tree (`make lint`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_finds_nothing() -> None:
    run = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_finds_nothing() -> None:
    run = _run(str(BIN / "mypy"))
    assert run.returncode == 0, run.stdout + run.stderr
