"""Google Cloud clients, each built on first use and then shared.

Nothing here runs at import time: a function instance scaled up from zero
pays only for the clients its first request really needs. The SDKs pick the
emulators up from ``FIRESTORE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``.
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


@shared
def database() -> Database:
    """Firestore over REST (``imagegen.firestore``): the emulator's when ``FIRESTORE_EMULATOR_HOST`` is set."""
    from imagegen.firestore.database import Database
    from imagegen.google_api.rest import RestApi

    settings = load_settings()
    if settings.firestore_emulator_host:
        # The emulator's "owner" token bypasses security rules, as the SDK's does.
        api = RestApi(f"http://{settings.firestore_emulator_host}/v1", scopes=(), emulator_token="owner")  # noqa: S106 (not a secret)
    else:
        api = RestApi("https://firestore.googleapis.com/v1", scopes=(_DATASTORE_SCOPE,))
    return Database(api, settings.project)


@shared
def tasks_api() -> RestApi:
    """Cloud Tasks v2 over REST (``task_queue``): the emulator's when ``CLOUD_TASKS_EMULATOR_HOST`` is set."""
    from imagegen.google_api.rest import RestApi

    host = load_settings().tasks_emulator_host
    if host:  # the emulator takes no credentials
        return RestApi(f"http://{host}", scopes=(), emulator_token="")
    return RestApi("https://cloudtasks.googleapis.com", scopes=(_CLOUD_PLATFORM_SCOPE,))


@shared
def firestore_client() -> firestore.Client:
    """The official client, for what REST cannot do: the listener of the events stream."""
    from google.cloud import firestore

    return firestore.Client(project=load_settings().project)


@shared
def storage_api() -> RestApi:
    """Cloud Storage's JSON API (``imagegen.storage``): the emulator's when ``STORAGE_EMULATOR_HOST`` is set."""
    from imagegen.google_api.rest import RestApi

    emulator = load_settings().storage_emulator_host
    if emulator:  # gcp-storage-emulator serves the same paths and takes no token
        return RestApi(emulator, scopes=(), emulator_token="")
    return RestApi("https://storage.googleapis.com", scopes=(_STORAGE_SCOPE,))

