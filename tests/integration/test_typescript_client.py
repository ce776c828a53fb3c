"""The TypeScript client's own tests (``node --test``, clients/typescript/tests) on the test stack."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from tests.conftest import API_BASE_URL
from tests.integration.web_build import ROOT, web_build  # noqa: F401  (fixture)

TS_DIR = ROOT / "clients" / "typescript"


def test_node_tests_pass_against_the_stack(stack: Any, standin: Any, web_build: None) -> None:
    # Slow enough for the abort test to catch the job running, and for progress to be seen;
    # prompts containing "[refus]" are blocked by the model (the failed-job test).
    standin.configure(latency_ms=800, faults=[{"kind": "safety", "match": "[refus]", "times": None}])
    env = os.environ | {"IMAGEGEN_URL": API_BASE_URL}
    run = subprocess.run(
        ["node", "--test", "tests/"], cwd=TS_DIR, env=env, capture_output=True, text=True, timeout=240
    )
    report = f"{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 10, report
    assert re.search(r"^# fail 0$", run.stdout, re.MULTILINE), report
