"""Google Cloud clients, each built on first use and then shared.

Nothing here runs at import time: a function instance scaled up from zero
pays only for the clients its first request really needs. Each REST API goes
to its emulator when its ``*_EMULATOR_HOST`` is set (the stack sets them).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from imagegen.config import load_settings

if TYPE_CHECKING:
    from google.cloud import firestore

    from imagegen.firestore.database import Database
    from imagegen.google_api.rest import RestApi

T = TypeVar("T")


def shared(factory: Callable[[], T]) -> Callable[[], T]:
    """Build on first call, under a lock, and return the same object ever after.

    ``functools.cache`` alone is not enough: two threads of one instance can
    both miss the cache, and the client that loses the race is garbage
    collected (closing its connections) while the other thread still uses it.
    """
    lock = threading.Lock()
    cached = functools.cache(factory)

    @functools.wraps(factory)
    def get() -> T:
        with lock:
            return cached()

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return get


_DATASTORE_SCOPE = "https://www.googleapis.com/auth/datastore"
_CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_STORAGE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"


def _rest_api(production: str, scope: str, emulator: str, emulator_token: str = "") -> RestApi:
    """``production`` with ADC for ``scope``, or the ``emulator`` base URL (when set) with its fixed token."""
    from imagegen.google_api.rest import RestApi

    if emulator:
        return RestApi(emulator, scopes=(), emulator_token=emulator_token)
    return RestApi(production, scopes=(scope,))


@shared
def database() -> Database:
    """Firestore over REST (``imagegen.firestore``): the emulator's when ``FIRESTORE_EMULATOR_HOST`` is set."""
    from imagegen.firestore.database import Database

    settings = load_settings()
    host = settings.firestore_emulator_host
    # The emulator's "owner" token bypasses security rules, as the SDK's does.
    api = _rest_api("https://firestore.googleapis.com/v1", _DATASTORE_SCOPE, host and f"http://{host}/v1", "owner")
    return Database(api, settings.project)


@shared
def tasks_api() -> RestApi:
    """Cloud Tasks v2 over REST (``task_queue``): the emulator's (no credentials) when ``CLOUD_TASKS_EMULATOR_HOST`` is set."""
    host = load_settings().tasks_emulator_host
    return _rest_api("https://cloudtasks.googleapis.com", _CLOUD_PLATFORM_SCOPE, host and f"http://{host}")


@shared
def firestore_client() -> firestore.Client:
    """The official client, for what REST cannot do: the listener of the events stream."""
    from google.cloud import firestore

    return firestore.Client(project=load_settings().project)


@shared
def storage_api() -> RestApi:
    """Cloud Storage's JSON API (``imagegen.storage``): gcp-storage-emulator's (the same paths, no token)
    when ``STORAGE_EMULATOR_HOST`` (its URL) is set."""
    return _rest_api("https://storage.googleapis.com", _STORAGE_SCOPE, load_settings().storage_emulator_host)

