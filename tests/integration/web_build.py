"""Fixtures for the browser-facing parts: ``make web`` once, and headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".stack" / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def web_build() -> None:
    """The TypeScript client (dist/) and the playground bundle: ``make web`` (a no-op when up to date)."""
    run = subprocess.run(
        ["make", "--no-print-directory", "-s", "web"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"make web failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (whose own browser download cannot work here).

    Per module: Playwright's sync API keeps an event loop on the thread while it runs,
    which later tests using asyncio must not inherit.
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def artifact(name: str) -> Path:
    """Where a test saves a screenshot (``.stack/test-artifacts/``, kept after the run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
