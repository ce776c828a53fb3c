"""imagegen.storage's JSON API calls against the storage emulator (gcp-storage-emulator).

The emulator ignores ``ifGenerationMatch`` and does not page listings: a stale
generation and several pages are tests/unit/test_storage_rest.py's, on a fake.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from emulator.stack import Stack
from imagegen import storage
from tests.integration.helpers import BUCKET, STORAGE, stored_objects


@pytest.fixture(autouse=True)
def emulator(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from imagegen.clients import storage_api
    from imagegen.config import load_settings

    for name in ("STORAGE_EMULATOR_HOST", "IMAGES_BUCKET"):
        monkeypatch.setenv(name, stack.env[name])
    load_settings.cache_clear()
    storage_api.cache_clear()  # type: ignore[attr-defined]
    yield
    load_settings.cache_clear()
    storage_api.cache_clear()  # type: ignore[attr-defined]


def _metadata(name: str) -> dict[str, str]:
    response = requests.get(f"{STORAGE}/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}", timeout=10)
    response.raise_for_status()
    return response.json()


def test_an_upload_is_the_object_the_emulator_holds() -> None:
    job_id = f"img_{uuid.uuid4().hex[:16]}"
    name = storage.object_name(job_id, 1, "png")
    data = bytes(range(256)) * 40  # every byte value, CR and LF among them
    generation = storage.upload(name, data, "image/png")
    metadata = _metadata(name)
    assert isinstance(generation, int) and metadata["generation"] == str(generation)
    assert (metadata["contentType"], metadata["cacheControl"]) == ("image/png", "private, max-age=86400")
    assert storage.download(name) == (data, "image/png")
    assert storage.object_size(BUCKET, name) == len(data)
    again = storage.upload(name, data, "image/png")  # a retried delivery rewrites it
    assert again != generation and storage.download(name) == (data, "image/png")


def test_download_and_delete_of_a_missing_object() -> None:
    name = storage.object_name(f"img_{uuid.uuid4().hex[:16]}", 1, "webp")
    assert storage.download(name) is None
    storage.delete(name)
    storage.delete(name, generation=1)


def test_delete_of_one_generation_and_of_a_jobs_images() -> None:
    job_id = f"img_{uuid.uuid4().hex[:16]}"
    other = storage.object_name(f"img_{uuid.uuid4().hex[:16]}", 1, "png")
    storage.upload(other, b"kept", "image/png")
    names = [storage.object_name(job_id, n, "png") for n in (1, 2, 3)] + [storage.thumbnail_name(job_id, 1)]
    generations = [storage.upload(name, b"x", "image/png") for name in names]
    storage.delete(names[0], generation=generations[0])
    assert stored_objects(job_id) == sorted(names[1:])
    storage.delete_job_images(job_id)
    assert stored_objects(job_id) == []
    assert storage.download(other) == (b"kept", "image/png")
