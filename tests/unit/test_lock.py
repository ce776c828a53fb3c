"""The functions' hashed lock: it pins what requirements.txt asks, it is what the tests run on,
and the functions' venv holds it and nothing else."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from emulator.stack import functions_bin

ROOT = Path(__file__).resolve().parents[2]
# What every venv holds, not a dependency of the functions (not deployed).
_VENV_TOOLS = {"pip", "setuptools"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:\\)?$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[_normalise(match[1])] = match[2]
    return pins


def _lock_entries() -> dict[str, list[str]]:
    """Each locked package and the lines (pin, hashes) of its entry."""
    entries: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "functions" / "requirements.lock").read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = _normalise(match[1])
            entries[current] = []
        elif current and line.strip().startswith("--hash=sha256:"):
            entries[current].append(line.strip())
    return entries


def test_lock_pins_every_requirement_at_its_version_with_hashes() -> None:
    wanted = _pins(ROOT / "functions" / "requirements.txt")
    locked = _pins(ROOT / "functions" / "requirements.lock")
    assert wanted, "functions/requirements.txt pins nothing?"
    assert {name: locked.get(name) for name in wanted} == wanted
    entries = _lock_entries()
    assert set(entries) == set(locked)
    assert [name for name, hashes in entries.items() if not hashes] == []


def test_tests_run_on_the_locked_versions_and_the_runtime_python() -> None:
    runtime = re.search(r"^RUNTIME_PYTHON := (\d+\.\d+)$", (ROOT / "Makefile").read_text(), re.M)
    assert runtime is not None
    assert "%d.%d" % sys.version_info[:2] == runtime[1]
    assert f"Python {runtime[1]}" in (ROOT / "functions" / "requirements.txt").read_text()
    installed = {name: metadata.version(name) for name in _pins(ROOT / "functions" / "requirements.lock")}
    assert installed == _pins(ROOT / "functions" / "requirements.lock")


def test_the_functions_venv_holds_the_lock_and_nothing_else() -> None:
    python = Path(functions_bin(ROOT, "python"))
    assert python.exists(), f"no {python}: run `make setup`"
    listing = subprocess.run(
        [python, "-I", "-c", "import json; from importlib import metadata; "
         "print(json.dumps([(d.metadata['Name'], d.version) for d in metadata.distributions()]))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    installed = {_normalise(name): version for name, version in json.loads(listing.stdout)}
    for tool in _VENV_TOOLS:
        installed.pop(tool, None)
    assert installed == _pins(ROOT / "functions" / "requirements.lock")
