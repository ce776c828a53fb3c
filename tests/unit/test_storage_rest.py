"""imagegen.storage over Cloud Storage's JSON API, against a loopback fake of the parts the
storage emulator leaves out: ``ifGenerationMatch`` (412), listing pages, 403 and 503 answers.
(tests/integration/test_storage.py runs the same calls against gcp-storage-emulator.)"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from imagegen import clients, storage
from imagegen.config import load_settings
from imagegen.generation import reference_images
from imagegen.generation.source_image import SourceImageError
from imagegen.google_api import errors
from imagegen.http import is_infrastructure_error
from tests.loopback import LoopbackServer, QuietHandler

BUCKET = "unit-images"


class _FakeGcs(QuietHandler):
    """One bucket in memory; names under ``forbidden/`` answer 403, ``flaky/`` one 503 first."""

    objects: ClassVar[dict[str, dict[str, Any]]] = {}
    paths: ClassVar[list[str]] = []
    generations = itertools.count(1000)
    lock = threading.Lock()

    def _route(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        type(self).paths.append(parts.path)
        return parts.path, {key: values[0] for key, values in parse_qs(parts.query).items()}

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self.reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, message: str) -> None:
        # Cloud Storage's error body: a code and a message, no canonical "status".
        self._json(status, {"error": {"code": status, "message": message, "errors": [{"reason": "x"}]}})

    def _name(self, path: str) -> str | None:
        prefix = f"/storage/v1/b/{BUCKET}/o/"
        if not path.startswith(prefix) or "/" in path[len(prefix):]:  # the name must come percent-encoded
            return None
        return unquote(path[len(prefix):])

    def do_POST(self) -> None:
        path, query = self._route()
        assert (path, query["uploadType"]) == (f"/upload/storage/v1/b/{BUCKET}/o", "multipart")
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + self.body()
        )
        meta_part, media_part = message.get_payload()
        metadata = json.loads(meta_part.get_payload())
        generation = next(type(self).generations)
        with type(self).lock:
            type(self).objects[metadata["name"]] = {
                **metadata, "generation": generation, "data": media_part.get_payload(decode=True),
                "media_type": media_part.get_content_type(),
            }
        self._json(200, {"name": metadata["name"], "generation": str(generation)})

    def do_GET(self) -> None:
        path, query = self._route()
        if path == f"/storage/v1/b/{BUCKET}/o":
            return self._list(query)
        name = self._name(path)
        if name is None:
            return self._error(400, "bad path")
        if name.startswith("forbidden/"):
            return self._error(403, "caller does not have storage.objects.get access")
        if name.startswith("flaky/") and type(self).paths.count(path) == 1:
            return self._error(503, "backend error")
        found = type(self).objects.get(name)
        if found is None:
            return self._error(404, "No such object")
        if query.get("alt") == "media":
            return self.reply(200, found["data"], {"Content-Type": found["contentType"]})
        self._json(200, {"size": str(len(found["data"]))})

    def _list(self, query: dict[str, str]) -> None:
        names = sorted(n for n in type(self).objects if n.startswith(query.get("prefix", "")))
        names = [n for n in names if n > query.get("pageToken", "")]
        page = names[: int(query["maxResults"])]
        body: dict[str, Any] = {"items": [{"name": n} for n in page]} if page else {}
        if len(names) > len(page):
            body["nextPageToken"] = page[-1]
        self._json(200, body)

    def do_DELETE(self) -> None:
        path, query = self._route()
        name = self._name(path)
        found = type(self).objects.get(name or "")
        if found is None:
            return self._error(404, "No such object")
        if "ifGenerationMatch" in query and int(query["ifGenerationMatch"]) != found["generation"]:
            return self._error(412, "At least one of the pre-conditions you specified did not hold.")
        del type(self).objects[name or ""]
        self.reply(204)


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_FakeGcs]]:
    _FakeGcs.objects, _FakeGcs.paths = {}, []
    with LoopbackServer(_FakeGcs) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.base_url)
        monkeypatch.setenv("IMAGES_BUCKET", BUCKET)
        load_settings.cache_clear()
        clients.storage_api.cache_clear()  # type: ignore[attr-defined]
        yield _FakeGcs
    load_settings.cache_clear()
    clients.storage_api.cache_clear()  # type: ignore[attr-defined]


def test_upload_sends_the_metadata_and_returns_the_generation(gcs: type[_FakeGcs]) -> None:
    name = storage.object_name("img_a", 1, "png")
    generation = storage.upload(name, b"\x89PNG\r\n--\x00\xff", "image/png")
    stored = gcs.objects[name]
    assert generation == stored["generation"]
    assert (stored["data"], stored["contentType"], stored["media_type"]) == (b"\x89PNG\r\n--\x00\xff", "image/png", "image/png")
    assert stored["cacheControl"] == "private, max-age=86400"
    assert storage.download(name) == (b"\x89PNG\r\n--\x00\xff", "image/png")


def test_delete_with_a_stale_generation_leaves_the_newer_object(gcs: type[_FakeGcs]) -> None:
    name = storage.thumbnail_name("img_a", 1)
    stale = storage.upload(name, b"first", "image/webp")
    newer = storage.upload(name, b"second", "image/webp")
    storage.delete(name, generation=stale)  # 412, ignored
    assert storage.download(name) == (b"second", "image/webp")
    storage.delete(name, generation=newer)
    assert storage.download(name) is None
    storage.delete(name)  # 404, ignored
    assert f"/storage/v1/b/{BUCKET}/o/generated_images%2Fimg_a%2Fimage_1_thumb.webp" in gcs.paths


def test_listing_follows_the_pages(gcs: type[_FakeGcs]) -> None:
    for index in range(1, 6):
        storage.upload(storage.object_name("img_a", index, "png"), b"x", "image/png")
    storage.upload(storage.object_name("img_b", 1, "png"), b"x", "image/png")
    names = list(storage._names("generated_images/img_a/", page_size=2))
    assert names == [storage.object_name("img_a", index, "png") for index in range(1, 6)]
    assert gcs.paths.count(f"/storage/v1/b/{BUCKET}/o") == 3
    storage.delete_job_images("img_a")
    assert list(gcs.objects) == [storage.object_name("img_b", 1, "png")]


def test_gcs_errors_are_typed_without_a_status_field() -> None:
    body = {"error": {"code": 412, "message": "Precondition Failed", "errors": [{"reason": "conditionNotMet"}]}}
    assert type(errors.from_response(412, body)) is errors.FailedPrecondition
    assert type(errors.from_response(403, {"error": {"code": 403, "message": "no"}})) is errors.PermissionDenied
    assert is_infrastructure_error(errors.from_response(503, {}))


def _reference(name: str) -> Any:
    return reference_images._one(f"gs://{BUCKET}/{name}")


def test_gs_reference_images_errors_are_the_jobs_messages(gcs: type[_FakeGcs], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SourceImageError, match="^Image source inaccessible : objet introuvable$"):
        _reference("inputs/absent.png")
    with pytest.raises(SourceImageError, match="^Image source refusée : lecture non autorisée$"):
        _reference("forbidden/a.png")
    monkeypatch.setenv("INPUT_IMAGE_MAX_BYTES", "1048576")
    load_settings.cache_clear()
    gcs.objects["inputs/big.png"] = {"data": b"x" * (1024 * 1024 + 1), "contentType": "image/png", "generation": 1}
    with pytest.raises(SourceImageError, match=r"^Image source trop volumineuse \(plus de 1 Mo\)$"):
        _reference("inputs/big.png")


def test_a_transient_error_is_retried(gcs: type[_FakeGcs]) -> None:
    name = "flaky/a.png"
    gcs.objects[name] = {"data": b"bytes", "contentType": "image/png", "generation": 1}
    assert storage.read_object(BUCKET, name, timeout=5).content == b"bytes"
    assert gcs.paths.count(f"/storage/v1/b/{BUCKET}/o/flaky%2Fa.png") == 2


def test_signing_through_iam_refreshes_the_token_over_httpx2(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth import credentials
    from google.cloud.storage.blob import Blob

    from imagegen.google_api.auth import HttpxRequest

    class ComputeCredentials(credentials.Credentials):  # Cloud Functions' metadata server: cannot sign locally
        service_account_email = "api@p.iam.gserviceaccount.com"

        def refresh(self, request: Any) -> None:
            assert isinstance(request, HttpxRequest)
            self.token = "access-token"

    signed: dict[str, Any] = {}
    monkeypatch.setenv("IMAGE_URL_MODE", "signed")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(storage, "_signing_credentials", ComputeCredentials)
    monkeypatch.setattr(Blob, "generate_signed_url", lambda blob, **options: signed.update(options, name=blob.name) or "url")
    load_settings.cache_clear()
    storage._signing_client.cache_clear()  # type: ignore[attr-defined]
    try:
        assert storage.object_url("generated_images/img_a/image_1.png") == "url"
    finally:
        load_settings.cache_clear()
        storage._signing_client.cache_clear()  # type: ignore[attr-defined]
    assert (signed["service_account_email"], signed["access_token"]) == ("api@p.iam.gserviceaccount.com", "access-token")
    assert signed["name"] == "generated_images/img_a/image_1.png" and "credentials" not in signed
