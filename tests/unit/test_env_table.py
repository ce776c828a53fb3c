"""The README's environment-variable table and the code read the same variables.

Every variable the functions, the emulators or the Python client read has a row in
the README's one table, and every row names a variable something reads: a new
setting without documentation, or a documented one nothing reads, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("functions", "emulator", "clients/python/src")
# Ways the code reads a variable: config's helpers, os.environ / os.getenv, and
# module-level constants naming one (``OVERRIDES_ENV = "TASKS_QUEUE_OVERRIDES"``).
_READS = re.compile(
    r"""_env(?:_bool|_int|_float)?\(\s*"([A-Z][A-Z0-9_]+)"|environ(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"|"""
    r"""environ\[\s*"([A-Z][A-Z0-9_]+)"\s*\]|getenv\(\s*"([A-Z][A-Z0-9_]+)"|_ENV\s*=\s*"([A-Z][A-Z0-9_]+)\""""
)
# Read by a library, not by our code; documented because operators set them.
READ_BY_LIBRARIES = {"THREADS": "functions-framework's gunicorn threads per instance"}
# The machine's own, never settings of this project.
SYSTEM = {"PATH", "HOME"}


def code_variables() -> set[str]:
    found: set[str] = set()
    for source in SOURCES:
        for path in (ROOT / source).rglob("*.py"):
            for match in _READS.finditer(path.read_text(encoding="utf-8")):
                found.update(name for name in match.groups() if name)
    return found - SYSTEM


def readme_variables() -> set[str]:
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    missing = code_variables() - readme_variables()
    assert not missing, f"add these to the README's environment table: {sorted(missing)}"


def test_every_row_of_the_readme_table_is_read_by_something() -> None:
    unread = readme_variables() - code_variables() - set(READ_BY_LIBRARIES)
    assert not unread, f"nothing reads these README rows: {sorted(unread)}"


def test_the_scan_sees_the_known_readers() -> None:
    variables = code_variables()
    assert {"GOOGLE_API_KEY", "WEBHOOK_SECRET", "TASKS_QUEUE_OVERRIDES", "IMAGEGEN_URL"} <= variables
