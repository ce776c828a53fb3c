"""The stack runs every function from the functions' venv, and says how to build it when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import stack as stack_module
from emulator.stack import FUNCTIONS, FUNCTIONS_VENV, Stack, StackError

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_runs_from_the_functions_venv() -> None:
    table = Stack(ROOT)._services_table()
    for name in FUNCTIONS:
        assert Path(table[name].argv[0]) == ROOT / FUNCTIONS_VENV / "bin" / "functions-framework", name
    # The emulators and the relay are dev tools: they stay on .venv.
    assert all(FUNCTIONS_VENV not in arg for name in ("storage", "relay") for arg in table[name].argv)


def test_a_missing_functions_venv_stops_the_stack_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_module, "port_in_use", lambda port, host="": False)
    with pytest.raises(StackError) as caught:
        Stack(tmp_path).start()
    message = str(caught.value)
    for name in FUNCTIONS:
        assert f"{name}: {tmp_path / FUNCTIONS_VENV / 'bin' / 'functions-framework'} not found" in message
    assert "make setup" in message
