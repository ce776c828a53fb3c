"""The REST layer (imagegen.google_api, imagegen.firestore's pure parts) on a loopback server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from imagegen.firestore import values
from imagegen.firestore.queries import Query
from imagegen.google_api import errors
from imagegen.google_api.rest import RestApi
from tests.loopback import LoopbackServer, QuietHandler


class _Flaky(QuietHandler):
    """Answers each path with the next status of ``plan`` (then 200), counting the requests."""

    plan: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def _answer(self) -> None:
        self.body()
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        status = type(self).plan.pop(0) if type(self).plan else 200
        names = {503: "UNAVAILABLE", 409: "ALREADY_EXISTS", 400: "INVALID_ARGUMENT"}
        body = {"ok": True} if status == 200 else {"error": {"code": status, "status": names[status], "message": "m"}}
        self.reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Any:
    _Flaky.plan, _Flaky.seen = [], []
    with LoopbackServer(_Flaky) as running:
        yield running


def test_idempotent_calls_are_retried_on_transient_errors(server: LoopbackServer) -> None:
    _Flaky.plan = [503, 503]
    api = RestApi(server.base_url, scopes=(), emulator_token="owner")
    assert api.call("GET", "/thing", idempotent=True) == {"ok": True}
    assert [method for method, _, _ in _Flaky.seen] == ["GET"] * 3
    assert {auth for _, _, auth in _Flaky.seen} == {"Bearer owner"}


def test_other_calls_are_sent_once_and_errors_are_typed(server: LoopbackServer) -> None:
    api = RestApi(server.base_url, scopes=(), emulator_token="")
    _Flaky.plan = [503]
    with pytest.raises(errors.Unavailable) as unavailable:
        api.call("POST", "/commit", {"writes": []}, idempotent=False)
    assert unavailable.value.http_status == 503 and len(_Flaky.seen) == 1 and _Flaky.seen[0][2] == ""
    _Flaky.plan = [409, 400]
    with pytest.raises(errors.AlreadyExists):
        api.call("POST", "/create", {}, idempotent=True)  # not transient: no retry
    with pytest.raises(errors.InvalidArgument):
        api.call("POST", "/create", {}, idempotent=True)
    assert len(_Flaky.seen) == 3


@pytest.mark.parametrize(("status", "body", "expected"), [
    (409, {"error": {"status": "ABORTED", "message": "lock"}}, errors.Aborted),
    (409, {"error": {"status": "ALREADY_EXISTS"}}, errors.AlreadyExists),
    (400, [{"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "index"}}], errors.FailedPrecondition),
    (503, None, errors.Unavailable),
    (502, "<html>", errors.ApiError),
])
def test_errors_follow_the_canonical_status(status: int, body: Any, expected: type) -> None:
    error = errors.from_response(status, body)
    assert type(error) is expected and error.http_status == status


def test_values_round_trip() -> None:
    moment = datetime(2026, 12, 1, 20, 30, 5, 123456, tzinfo=UTC)
    data = {"s": "é", "i": 7, "big": 2**62, "f": 0.5, "b": True, "n": None, "t": moment, "bytes": b"\x00\xff",
            "m": {"nested": [1, "two", {"x": None}]}, "empty": {}, "list": []}
    encoded = values.encode_fields(data)
    assert encoded["i"] == {"integerValue": "7"} and encoded["t"] == {"timestampValue": "2026-12-01T20:30:05.123456Z"}
    assert values.decode_fields(json.loads(json.dumps(encoded))) == data


def test_timestamps_keep_microseconds_of_nanoseconds() -> None:
    assert values.parse_timestamp("2026-12-01T20:30:05.123456789Z") == datetime(2026, 12, 1, 20, 30, 5, 123456,
                                                                               tzinfo=UTC)
    assert values.parse_timestamp("2026-12-01T20:30:05Z").microsecond == 0
    with pytest.raises(ValueError):
        values.parse_timestamp("2026-12-01 20:30:05")


@pytest.mark.parametrize("names", [["images", "1"], ["a b", "c`d", "e\\f"], ["plain"], ["_x", "y9"]])
def test_field_paths_round_trip(names: list[str]) -> None:
    assert values.split_field_path(values.field_path(*names)) == names


@pytest.mark.parametrize("path", ["a..b", "`open", "a.", ""])
def test_malformed_field_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        values.split_field_path(path)


def test_queries_spell_null_as_unary_filters_and_cursors_order_by_name() -> None:
    query = Query("jobs").where("queued_at", "==", None).where("created_at", "<", datetime(2026, 1, 1, tzinfo=UTC))
    structured = query.to_json()
    assert structured["where"]["compositeFilter"]["filters"][0] == {
        "unaryFilter": {"op": "IS_NULL", "field": {"fieldPath": "queued_at"}}
    }
    paged = Query("jobs").where("owner", "==", "o").order_by("created_at", "DESCENDING").start_after(
        "projects/p/databases/(default)/documents/jobs/a", {"created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    ).to_json()
    assert [order["field"]["fieldPath"] for order in paged["orderBy"]] == ["created_at", "__name__"]
    assert {order["direction"] for order in paged["orderBy"]} == {"DESCENDING"}
    assert paged["startAt"]["before"] is False
    assert paged["startAt"]["values"][-1] == {"referenceValue": "projects/p/databases/(default)/documents/jobs/a"}
