"""Google Cloud clients, each built on first use and then shared.

Nothing here runs at import time: a function instance scaled up from zero
pays only for the clients its first request really needs. The SDKs pick the
emulators up from ``FIRESTORE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``;
Cloud Tasks has no such variable, so ``CLOUD_TASKS_EMULATOR_HOST`` is wired
here by hand.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from imagegen.config import load_settings

if TYPE_CHECKING:
    from google.cloud import firestore, storage, tasks_v2  # type: ignore[attr-defined]

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


@shared
def firestore_client() -> firestore.Client:
    from google.cloud import firestore

    return firestore.Client(project=load_settings().project)


@shared
def storage_client() -> storage.Client:
    from google.cloud import storage  # type: ignore[attr-defined]

    settings = load_settings()
    if settings.storage_emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=settings.project, credentials=AnonymousCredentials())
    return storage.Client(project=settings.project)


@shared
def tasks_client() -> tasks_v2.CloudTasksClient:
    from google.cloud import tasks_v2

    host = load_settings().tasks_emulator_host
    if not host:
        return tasks_v2.CloudTasksClient()
    import grpc
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(host)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
