"""imagegen.firestore against the Firestore emulator, checked against the official client's view."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.stack import Stack
from imagegen.firestore import values
from imagegen.firestore.database import Database, Transaction
from imagegen.google_api import errors


@pytest.fixture
def db(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    from imagegen.clients import database
    from imagegen.config import load_settings

    for name in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.setenv(name, stack.env[name])
    load_settings.cache_clear()
    database.cache_clear()
    yield database()
    load_settings.cache_clear()
    database.cache_clear()


@pytest.fixture
def sdk(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", stack.env["FIRESTORE_EMULATOR_HOST"])
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture
def collection() -> str:
    return f"rest_{uuid.uuid4().hex[:10]}"


def test_documents_read_back_as_the_official_client_reads_them(db: Database, sdk: Any, collection: str) -> None:
    moment = datetime(2026, 12, 1, 20, 30, 5, 123456, tzinfo=UTC)
    data = {"s": "é", "i": 7, "f": 0.5, "b": True, "n": None, "t": moment, "m": {"k": [1, {"x": "y"}]}}
    db.create(f"{collection}/a", data)
    assert sdk.collection(collection).document("a").get().to_dict() == data
    assert db.get(f"{collection}/a").data == data
    sdk.collection(collection).document("b").set(data)
    assert db.get(f"{collection}/b").data == data
    assert db.get(f"{collection}/missing").data is None


def test_writes_keep_the_sdk_preconditions(db: Database, sdk: Any, collection: str) -> None:
    path = f"{collection}/a"
    db.create(path, {"keep": 1, "drop": 2, "images": {}})
    with pytest.raises(errors.AlreadyExists):
        db.create(path, {"keep": 0})
    with pytest.raises(errors.NotFound):
        db.update(f"{collection}/missing", {"keep": 1})
    db.update(path, {"drop": values.DELETE, "images.`1`": {"url": "u"}, "keep": 3})
    assert sdk.collection(collection).document("a").get().to_dict() == {"keep": 3, "images": {"1": {"url": "u"}}}
    db.set(path, {"only": True})
    assert db.get(path).data == {"only": True}
    db.delete(path)
    assert not db.get(path).exists


def test_queries_and_cursors_match_the_official_client(db: Database, sdk: Any, collection: str) -> None:
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(7):  # two documents share each time: the cursor must break ties by id
        db.set(f"{collection}/d{index}", {"owner": "o" if index != 3 else "other", "at": start + timedelta(
            seconds=index // 2), "v": index, "q": None if index % 2 else 1})
    ours = db.query(collection).where("owner", "==", "o").order_by("at", "DESCENDING")
    theirs = sdk.collection(collection).where(filter=FieldFilter("owner", "==", "o")).order_by(
        "at", direction=firestore.Query.DESCENDING)
    first = db.run(ours.limit(2))
    assert [s.id for s in first] == [s.id for s in theirs.limit(2).stream()]
    cursor = sdk.collection(collection).document(first[-1].id).get()
    assert [s.id for s in db.run(ours.start_after(db.name(first[-1].path), first[-1].data).limit(3))] == [
        s.id for s in theirs.start_after(cursor).limit(3).stream()]
    nulls = db.run(db.query(collection).where("q", "==", None).where("v", "<", 5))
    assert sorted(s.id for s in nulls) == ["d1", "d3"]
    totals = db.aggregate(ours, {"jobs": ("count", None), "sum": ("sum", "v")})
    assert totals == {"jobs": 6, "sum": sum(range(7)) - 3}
    assert db.aggregate(db.query(collection).where("owner", "==", "nobody"), {"n": ("count", None)}) == {"n": 0}


def test_transactions_serialize_concurrent_read_modify_writes(db: Database, collection: str) -> None:
    path = f"{collection}/counter"

    def increment(transaction: Transaction) -> None:
        current = transaction.get(path).data or {"n": 0}
        transaction.set(path, {"n": current["n"] + 1})

    def work() -> None:
        for _ in range(3):
            db.run_transaction(increment)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert db.get(path).data == {"n": 12}


def test_a_failing_transaction_writes_nothing_and_propagates(db: Database, collection: str) -> None:
    path = f"{collection}/doc"
    db.set(path, {"n": 1})

    class Refused(Exception):
        pass

    def refuse(transaction: Transaction) -> None:
        transaction.update(path, {"n": 2})
        raise Refused

    with pytest.raises(Refused):
        db.run_transaction(refuse)
    assert db.get(path).data == {"n": 1}
    db.run_transaction(lambda transaction: transaction.update(path, {"n": 3}))  # its lock was released
    assert db.get(path).data == {"n": 3}
