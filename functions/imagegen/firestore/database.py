"""One Firestore database over REST: reads, writes, queries, aggregations, transactions.

Documents are addressed by their path under the database (``image_jobs/img_x``).
Writes carry the SDK's preconditions: ``create`` fails with ``AlreadyExists``
when the document exists, ``update`` with ``NotFound`` when it does not.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx2

from imagegen.firestore import values
from imagegen.firestore.queries import Query
from imagegen.google_api import errors
from imagegen.google_api.rest import RestApi

T = TypeVar("T")
Aggregation = tuple[Literal["count", "sum"], str | None]
"""``("count", None)`` or ``("sum", field)``."""

# Optimistic concurrency (infra/firestore.tf): a commit is ABORTED when a
# document it read changed meanwhile; run the function again, spaced by
# exponential backoff with jitter (immediate retries tend to abort again
# under contention, and often on the emulator).
_TX_ATTEMPTS = 12
_TX_BACKOFF = 0.02
_TX_BACKOFF_MAX = 1.0


@dataclass(frozen=True)
class Snapshot:
    """A document as read: ``data`` is None when it does not exist."""

    path: str
    data: dict[str, Any] | None
    update_time: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.data is not None

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class Transaction:
    """Reads inside the transaction; writes buffered until it commits."""

    def __init__(self, database: Database, transaction_id: str) -> None:
        self._database = database
        self.id = transaction_id
        self.writes: list[dict[str, Any]] = []

    def get(self, path: str) -> Snapshot:
        return self._database.get(path, transaction=self.id)

    def create(self, path: str, data: dict[str, Any]) -> None:
        self.writes.append(self._database.create_write(path, data))

    def set(self, path: str, data: dict[str, Any]) -> None:
        self.writes.append(self._database.set_write(path, data))

    def update(self, path: str, changes: dict[str, Any]) -> None:
        self.writes.append(self._database.update_write(path, changes))

    def delete(self, path: str) -> None:
        self.writes.append({"delete": self._database.name(path)})


class Database:
    def __init__(self, api: RestApi, project: str, database: str = "(default)") -> None:
        self._api = api
        self.root = f"projects/{project}/databases/{database}/documents"

    def name(self, path: str) -> str:
        """The full resource name of the document at ``path``."""
        return f"{self.root}/{path}"

    def _url(self, name: str) -> str:
        return "/" + quote(name, safe="/()")

    def _rpc(self, method: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        """``POST {database}/documents:{method}``: the database's custom methods (commit, runQuery...)."""
        return self._api.call("POST", f"{self._url(self.root)}:{method}", body, idempotent=idempotent)

    # ------------------------------------------------------------ reads

    def get(self, path: str, *, transaction: str | None = None) -> Snapshot:
        if transaction:  # batchGet, as the SDK reads in a transaction (GET ?transaction= hangs on the emulator)
            body = {"documents": [self.name(path)], "transaction": transaction}
            (result,) = self._rpc("batchGet", body, idempotent=True)
            return self._snapshot(result["found"]) if "found" in result else Snapshot(path, None)
        try:
            document = self._api.call("GET", self._url(self.name(path)), idempotent=True)
        except errors.NotFound:
            return Snapshot(path, None)
        return self._snapshot(document)

    def _snapshot(self, document: dict[str, Any]) -> Snapshot:
        path = document["name"].removeprefix(self.root + "/")
        update_time = values.parse_timestamp(document["updateTime"]) if "updateTime" in document else None
        return Snapshot(path, values.decode_fields(document.get("fields", {})), update_time)

    def query(self, collection: str) -> Query:
        return Query(collection)

    def run(self, query: Query, *, transaction: str | None = None) -> list[Snapshot]:
        body: dict[str, Any] = {"structuredQuery": query.to_json()}
        if transaction:
            body["transaction"] = transaction
        results = self._rpc("runQuery", body, idempotent=True)
        return [self._snapshot(result["document"]) for result in results if "document" in result]

    def find(self, query: Query) -> list[dict[str, Any]]:
        """The fields of each document ``query`` matches (a query only returns documents that exist)."""
        return [snapshot.data or {} for snapshot in self.run(query)]

    def aggregate(self, query: Query, aggregations: dict[str, Aggregation]) -> dict[str, Any]:
        """``{alias: value}`` of ``count``/``sum`` aggregations (at most 5) over ``query``."""
        wanted = [
            {"alias": alias, "count": {}} if kind == "count" else {"alias": alias, "sum": {"field": {"fieldPath": name}}}
            for alias, (kind, name) in aggregations.items()
        ]
        body = {"structuredAggregationQuery": {"structuredQuery": query.to_json(), "aggregations": wanted}}
        results = self._rpc("runAggregationQuery", body, idempotent=True)
        fields: dict[str, Any] = next(
            (result["result"].get("aggregateFields", {}) for result in results if "result" in result), {}
        )
        return {alias: values.decode(fields[alias]) if alias in fields else 0 for alias in aggregations}

    # ------------------------------------------------------------ writes

    def create_write(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        document = {"name": self.name(path), "fields": values.encode_fields(data)}
        return {"update": document, "currentDocument": {"exists": False}}

    def set_write(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"update": {"name": self.name(path), "fields": values.encode_fields(data)}}

    def update_write(self, path: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change only the fields named by ``changes``' keys (field paths); ``values.DELETE`` removes one."""
        fields: dict[str, Any] = {}
        for key, value in changes.items():
            *parents, last = values.split_field_path(key)
            target = fields
            for parent in parents:
                target = target.setdefault(parent, {})
            if value is not values.DELETE:
                target[last] = value
        document = {"name": self.name(path), "fields": values.encode_fields(fields)}
        return {"update": document, "updateMask": {"fieldPaths": list(changes)}, "currentDocument": {"exists": True}}

    def commit(self, writes: list[dict[str, Any]], *, transaction: str | None = None) -> None:
        body: dict[str, Any] = {"writes": writes}
        if transaction:
            body["transaction"] = transaction
        self._rpc("commit", body, idempotent=False)

    def create(self, path: str, data: dict[str, Any]) -> None:
        self.commit([self.create_write(path, data)])

    def set(self, path: str, data: dict[str, Any]) -> None:
        self.commit([self.set_write(path, data)])

    def update(self, path: str, changes: dict[str, Any]) -> None:
        self.commit([self.update_write(path, changes)])

    def delete(self, path: str) -> None:
        self.commit([{"delete": self.name(path)}])

    # ------------------------------------------------------------ transactions

    def run_transaction(self, function: Callable[[Transaction], T]) -> T:
        """Run ``function`` in a read-write transaction and commit what it wrote.

        ``function`` runs again when the commit is ABORTED (it must have no
        effect besides its reads and writes); an exception from it rolls the
        transaction back and propagates.
        """
        delay, retrying, attempt = _TX_BACKOFF, None, 1
        while True:
            options: dict[str, Any] = {"readWrite": {"retryTransaction": retrying} if retrying else {}}
            begun = self._rpc("beginTransaction", {"options": options}, idempotent=True)
            transaction = Transaction(self, begun["transaction"])
            try:
                result = function(transaction)
            except errors.Aborted:  # a read lost to a concurrent transaction (pessimistic mode)
                self._rollback(transaction.id)
                if attempt == _TX_ATTEMPTS:
                    raise
            except BaseException:
                self._rollback(transaction.id)
                raise
            else:
                try:
                    self.commit(transaction.writes, transaction=transaction.id)
                    return result
                except errors.Aborted:
                    if attempt == _TX_ATTEMPTS:
                        raise
            retrying, attempt = transaction.id, attempt + 1
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, _TX_BACKOFF_MAX)

    def _rollback(self, transaction_id: str) -> None:
        try:
            self._rpc("rollback", {"transaction": transaction_id}, idempotent=True)
        except (errors.ApiError, httpx2.HTTPError):
            pass  # the transaction expires by itself; the caller's error matters more
