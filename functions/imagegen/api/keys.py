"""API keys: ``igk_`` + 32 url-safe random characters, stored only as hashes.

Document ``{API_KEYS_COLLECTION}/{sha256 hex of the key}``::

    owner, name, created_at, disabled, key_prefix (first 8 characters, for display),
    monthly_budget_usd (optional: new jobs are refused, 402, once the key's jobs
    completed this month cost that much; see ``usage_api``)

Lookup precedence (first match wins):
1. ``API_KEY_HASHES``: comma-separated ``owner:sha256hex`` entries, for small
   deployments that create no Firestore documents. A key listed there is
   accepted even if Firestore disabled it; remove it from the setting to revoke.
2. Firestore. Positive answers are cached in-process for ``_CACHE_SECONDS``,
   so a disabled key keeps working for up to that long on other instances.

Keys are 192 random bits, so a plain SHA-256 is enough: the hash cannot be
brute-forced back into a key, and it lets a request find its document by id.

Command line (uses the normal settings: ``FIRESTORE_EMULATOR_HOST`` for the
emulator, else Application Default Credentials and ``GOOGLE_CLOUD_PROJECT``)::

    python -m imagegen.api.keys create --owner alice --name frontend [--monthly-budget-usd 20]
    python -m imagegen.api.keys set-budget HASH_OR_KEY_PREFIX --monthly-budget-usd 50   # 0: no budget
    python -m imagegen.api.keys generate --owner alice   # for API_KEY_HASHES, writes nothing
    python -m imagegen.api.keys list
    python -m imagegen.api.keys disable HASH_OR_KEY_PREFIX
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from imagegen.clients import database
from imagegen.config import load_settings

KEY_PREFIX = "igk_"
KEY_PATTERN = re.compile(r"^igk_[A-Za-z0-9_-]{32}$")
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_DISPLAY_PREFIX_LENGTH = 8
_CACHE_SECONDS = 60.0
_CACHE_SIZE = 1024
_SHOWN_ONCE = "Store the key now: it cannot be shown again."


class _TtlCache:
    """A small thread-safe dict whose entries expire; the oldest goes first when full."""

    def __init__(self, ttl: float, size: int) -> None:
        self._ttl = ttl
        self._size = size
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._items[key]
                return None
            return entry[1]

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._items.pop(key, None)
            while len(self._items) >= self._size:
                # Same TTL for all: insertion order is expiry order.
                del self._items[next(iter(self._items))]
            self._items[key] = (time.monotonic() + self._ttl, value)

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


_owners = _TtlCache(_CACHE_SECONDS, _CACHE_SIZE)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)  # 24 bytes -> 32 characters


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_owner(owner: str) -> str:
    if not OWNER_PATTERN.match(owner):
        raise ValueError(f"invalid owner {owner!r}: letters, digits and . _ @ + - only (max 128)")
    return owner


@functools.lru_cache(maxsize=4)
def parse_key_hashes(value: str) -> dict[str, str]:
    """``API_KEY_HASHES`` as {hash: owner}; a malformed entry raises ``ValueError``."""
    owners: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        owner, _, key_hash = entry.rpartition(":")
        key_hash = key_hash.strip().lower()
        if not _HASH_PATTERN.match(key_hash):
            raise ValueError(f"API_KEY_HASHES: {entry[:20]!r}... is not owner:sha256hex")
        owners[key_hash] = _check_owner(owner.strip())
    return owners


def _path(key_hash: str) -> str:
    return f"{load_settings().api_keys_collection}/{key_hash}"


def _check_budget(budget: float | None) -> float | None:
    if budget is not None and not (budget >= 0 and budget < float("inf")):
        raise ValueError("--monthly-budget-usd must be a non-negative number of USD")
    return budget or None  # 0: no budget


def create_key(owner: str, name: str, monthly_budget_usd: float | None = None) -> str:
    """Store a new key for ``owner`` and return it: the only time it exists in clear."""
    key = new_key()
    document: dict[str, Any] = {
        "owner": _check_owner(owner),
        "name": name,
        "created_at": datetime.now(UTC),
        "disabled": False,
        "key_prefix": key[:_DISPLAY_PREFIX_LENGTH],
    }
    budget = _check_budget(monthly_budget_usd)
    if budget is not None:
        document["monthly_budget_usd"] = budget
    database().create(_path(hash_key(key)), document)
    return key


def monthly_budget(key_hash: str) -> float | None:
    """The key's monthly budget in USD, None without one (or for ``API_KEY_HASHES`` keys)."""
    value = (database().get(_path(key_hash)).data or {}).get("monthly_budget_usd")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def lookup(key: str) -> str | None:
    """The key's owner, or None when it is malformed, unknown or disabled."""
    if not KEY_PATTERN.match(key):
        return None
    key_hash = hash_key(key)
    owner = parse_key_hashes(load_settings().api_key_hashes).get(key_hash) or _owners.get(key_hash)
    if owner:
        return owner
    document = database().get(_path(key_hash)).data
    if not document or document.get("disabled", False):
        return None
    _owners.put(key_hash, document["owner"])
    return document["owner"]


def list_keys() -> list[dict[str, Any]]:
    """Every key document (with its ``hash``), oldest first."""
    query = database().query(load_settings().api_keys_collection)
    keys = [(snapshot.data or {}) | {"hash": snapshot.id} for snapshot in database().run(query)]
    return sorted(keys, key=lambda doc: doc["created_at"])


def disable_key(key_hash_or_prefix: str) -> str:
    """Disable the key named by its hash or its displayed ``key_prefix``; returns the hash.

    Raises ``LookupError`` when no key, or more than one for a prefix, matches.
    """
    key_hash = _update_key(key_hash_or_prefix, {"disabled": True})
    _owners.discard(key_hash)
    return key_hash


def set_budget(key_hash_or_prefix: str, monthly_budget_usd: float) -> str:
    """Set (0: remove) the key's monthly budget; returns the hash (``LookupError`` as ``disable_key``)."""
    from imagegen.firestore.values import DELETE

    budget = _check_budget(monthly_budget_usd)
    value = DELETE if budget is None else budget
    return _update_key(key_hash_or_prefix, {"monthly_budget_usd": value})


def _update_key(key_hash_or_prefix: str, changes: dict[str, Any]) -> str:
    """Apply ``changes`` to the key named by its hash or its ``key_prefix``; its hash."""
    from imagegen.google_api.errors import NotFound

    ident = key_hash_or_prefix.strip()
    if _HASH_PATTERN.match(ident.lower()):
        key_hash = ident.lower()
    else:
        query = database().query(load_settings().api_keys_collection).where("key_prefix", "==", ident).limit(2)
        matches = [snapshot.id for snapshot in database().run(query)]
        if len(matches) != 1:
            found = "no key" if not matches else "several keys"
            raise LookupError(f"{found} with prefix {ident!r}; give the full hash")
        key_hash = matches[0]
    try:
        database().update(_path(key_hash), changes)
    except NotFound:
        raise LookupError(f"no key with hash {ident!r}") from None
    return key_hash


def _target() -> str:
    settings = load_settings()
    where = os.environ.get("FIRESTORE_EMULATOR_HOST") or "Firestore (Application Default Credentials)"
    return f"{where}, project {settings.project}, collection {settings.api_keys_collection}"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse  # the CLI's alone: the api imports this module for lookups

    parser = argparse.ArgumentParser(prog="python -m imagegen.api.keys", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="store a new key in Firestore and print it once")
    create.add_argument("--owner", required=True)
    create.add_argument("--name", required=True, help="what the key is for, e.g. frontend")
    create.add_argument("--monthly-budget-usd", type=float, help="refuse new jobs once this month's cost this much")
    generate = commands.add_parser("generate", help="print a new key and its API_KEY_HASHES entry")
    generate.add_argument("--owner", required=True)
    commands.add_parser("list", help="list the keys stored in Firestore")
    disable = commands.add_parser("disable", help="disable a Firestore key")
    disable.add_argument("key", metavar="HASH_OR_KEY_PREFIX")
    budget = commands.add_parser("set-budget", help="set or (with 0) remove a key's monthly budget")
    budget.add_argument("key", metavar="HASH_OR_KEY_PREFIX")
    budget.add_argument("--monthly-budget-usd", type=float, required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "generate":
            owner, key = _check_owner(args.owner), new_key()
            print(key)
            print(f"API_KEY_HASHES entry: {owner}:{hash_key(key)}", file=sys.stderr)
            print(_SHOWN_ONCE, file=sys.stderr)
            return 0
        print(f"Using {_target()}", file=sys.stderr)
        if args.command == "create":
            print(create_key(args.owner, args.name, args.monthly_budget_usd))
            print(_SHOWN_ONCE, file=sys.stderr)
        elif args.command == "list":
            for doc in list_keys():
                state = "disabled" if doc.get("disabled") else "active"
                print(
                    f"{doc['hash']}  {doc['key_prefix']}  {state:8}  {doc['created_at']:%Y-%m-%d %H:%M}"
                    f"  {doc['owner']}  {doc['name']}"
                    + (f"  budget {doc['monthly_budget_usd']} USD/month" if doc.get("monthly_budget_usd") else "")
                )
        elif args.command == "set-budget":
            print(f"budget set on {set_budget(args.key, args.monthly_budget_usd)}")
        else:
            print(f"disabled {disable_key(args.key)}")
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
