"""API keys against the stack's Firestore emulator: create, look up, disable, the CLI.

This process talks to the emulator itself (``imagegen.api.keys`` with the
stack's ``FIRESTORE_EMULATOR_HOST``); the HTTP API is not involved.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.stack import Stack
from imagegen.api import keys
from imagegen.api.auth import AuthError, Principal, authenticate
from imagegen.api.keys import hash_key, lookup
from imagegen.clients import database, firestore_client
from imagegen.config import load_settings
from tests.conftest import ROOT


def _fresh_clients() -> None:
    load_settings.cache_clear()
    firestore_client.cache_clear()
    database.cache_clear()


@pytest.fixture
def emulator(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's settings point at the stack's Firestore; the owner cache starts empty."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", stack.project)
    for name in ("API_KEY_HASHES", "API_KEYS_COLLECTION", "AUTH_REQUIRED", "FIREBASE_AUTH_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(keys, "_owners", keys._TtlCache(60, 16))
    _fresh_clients()
    yield
    monkeypatch.undo()
    _fresh_clients()


def _document(key_hash: str) -> dict[str, Any]:
    return firestore_client().collection("api_keys").document(key_hash).get().to_dict()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagegen.api.keys", *args],
        cwd=ROOT / "functions", env=stack.env, capture_output=True, text=True, timeout=60,
    )


def test_created_key_is_stored_hashed_and_found(emulator: None) -> None:
    key = keys.create_key("alice", "frontend")
    assert keys.KEY_PATTERN.match(key)
    stored = _document(hash_key(key))
    assert stored["owner"] == "alice" and stored["name"] == "frontend"
    assert stored["key_prefix"] == key[:8] and stored["disabled"] is False
    assert stored["created_at"] is not None
    assert key not in repr(stored) and key[8:] not in repr(stored)  # only the hash knows it
    assert lookup(key) == "alice"
    assert authenticate({"X-API-Key": key}) == Principal("key:alice", "api_key")


def test_unknown_and_disabled_keys_are_refused(emulator: None) -> None:
    unknown = keys.new_key()
    assert lookup(unknown) is None
    with pytest.raises(AuthError) as caught:
        authenticate({"Authorization": f"Bearer {unknown}"})
    assert (caught.value.status, caught.value.message) == (401, "Clé API invalide")

    by_hash, by_prefix = keys.create_key("bob", "batch"), keys.create_key("bob", "mobile")
    assert lookup(by_hash) == lookup(by_prefix) == "bob"  # now cached
    assert keys.disable_key(hash_key(by_hash).upper()) == hash_key(by_hash)
    assert keys.disable_key(by_prefix[:8]) == hash_key(by_prefix)
    assert lookup(by_hash) is None and lookup(by_prefix) is None  # disabling drops the cache entry
    assert _document(hash_key(by_hash))["disabled"] is True
    with pytest.raises(LookupError):
        keys.disable_key(hash_key(unknown))
    with pytest.raises(LookupError):
        keys.disable_key("igk_????")


def test_other_instances_may_accept_a_disabled_key_for_the_cache_ttl(
    emulator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = keys.create_key("carol", "cache")
    assert lookup(key) == "carol"
    # Another instance (here: a direct write) disables it: this one still has it cached.
    firestore_client().collection("api_keys").document(hash_key(key)).update({"disabled": True})
    assert lookup(key) == "carol"
    monkeypatch.setattr(keys, "_owners", keys._TtlCache(60, 16))  # the TTL has passed
    assert lookup(key) is None


def test_config_keys_take_precedence_over_firestore(emulator: None, monkeypatch: pytest.MonkeyPatch) -> None:
    key = keys.create_key("dave", "stored")
    keys.disable_key(hash_key(key))
    monkeypatch.setenv("API_KEY_HASHES", f"erin:{hash_key(key)}")
    load_settings.cache_clear()
    assert lookup(key) == "erin"


def test_cli_creates_lists_and_disables_keys(
    stack: Stack, emulator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = cli(stack, "create", "--owner", "frank", "--name", "cli test")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert keys.KEY_PATTERN.match(key), created.stdout
    assert "cannot be shown again" in created.stderr
    assert stack.env["FIRESTORE_EMULATOR_HOST"] in created.stderr
    assert lookup(key) == "frank"

    listed = cli(stack, "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(hash_key(key))]
    assert key[:8] in line and "active" in line and "frank" in line and "cli test" in line
    assert key not in listed.stdout

    disabled = cli(stack, "disable", hash_key(key))
    assert disabled.returncode == 0, disabled.stderr
    monkeypatch.setattr(keys, "_owners", keys._TtlCache(60, 16))  # another process disabled it
    assert lookup(key) is None

    missing = cli(stack, "disable", hash_key(keys.new_key()))
    assert missing.returncode == 1 and "no key" in missing.stderr


def test_cli_generate_prints_a_config_entry_and_stores_nothing(
    stack: Stack, emulator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = cli(stack, "generate", "--owner", "gina")
    assert generated.returncode == 0, generated.stderr
    key = generated.stdout.strip()
    entry = f"gina:{hash_key(key)}"
    assert entry in generated.stderr
    assert lookup(key) is None  # not in Firestore
    monkeypatch.setenv("API_KEY_HASHES", entry)
    load_settings.cache_clear()
    assert lookup(key) == "gina"
