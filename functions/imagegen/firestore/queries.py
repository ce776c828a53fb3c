"""Structured queries: filters, order, cursor and limit, built up immutably like the SDK's."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from imagegen.firestore import values

_OPERATORS = {
    "==": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS_THAN", "<=": "LESS_THAN_OR_EQUAL",
    ">": "GREATER_THAN", ">=": "GREATER_THAN_OR_EQUAL", "in": "IN", "not-in": "NOT_IN",
    "array-contains": "ARRAY_CONTAINS", "array-contains-any": "ARRAY_CONTAINS_ANY",
}
_INEQUALITIES = {"!=", "<", "<=", ">", ">=", "not-in"}
Direction = Literal["ASCENDING", "DESCENDING"]


@dataclass(frozen=True)
class Query:
    """A query on one collection; ``where``/``order_by``/``start_after``/``limit`` return new ones."""

    collection: str
    filters: tuple[tuple[str, str, Any], ...] = ()
    orders: tuple[tuple[str, Direction], ...] = ()
    cursor: tuple[Any, ...] | None = None
    max_results: int | None = None
    _cursor_name: str = field(default="", repr=False)

    def where(self, field_name: str, operator: str, value: Any) -> Query:
        if operator not in _OPERATORS:
            raise ValueError(f"unknown operator {operator!r}")
        return replace(self, filters=(*self.filters, (field_name, operator, value)))

    def order_by(self, field_name: str, direction: Direction = "ASCENDING") -> Query:
        return replace(self, orders=(*self.orders, (field_name, direction)))

    def limit(self, count: int) -> Query:
        return replace(self, max_results=count)

    def start_after(self, document_name: str, data: dict[str, Any]) -> Query:
        """Resume after the document ``document_name`` (full name) whose fields are ``data``.

        As the SDK does, the order gets the inequality fields and then
        ``__name__`` (in the last order's direction), and the cursor holds the
        document's value of each, so ties are broken by document id.
        """
        orders = self._normalized_orders()
        cursor = tuple(data[name] for name, _ in orders[:-1])
        return replace(self, orders=orders, cursor=cursor, _cursor_name=document_name)

    def _normalized_orders(self) -> tuple[tuple[str, Direction], ...]:
        orders = list(self.orders)
        ordered = {name for name, _ in orders}
        for name, operator, _value in self.filters:
            if operator in _INEQUALITIES and name not in ordered:
                orders.append((name, "ASCENDING"))
                ordered.add(name)
        if "__name__" not in ordered:
            orders.append(("__name__", orders[-1][1] if orders else "ASCENDING"))
        return tuple(orders)

    def to_json(self) -> dict[str, Any]:
        """The ``structuredQuery`` of the REST API."""
        query: dict[str, Any] = {"from": [{"collectionId": self.collection}]}
        filters = [_filter(*condition) for condition in self.filters]
        if len(filters) == 1:
            query["where"] = filters[0]
        elif filters:
            query["where"] = {"compositeFilter": {"op": "AND", "filters": filters}}
        if self.orders:
            query["orderBy"] = [{"field": {"fieldPath": name}, "direction": way} for name, way in self.orders]
        if self.cursor is not None:
            cursor = [values.encode(value) for value in self.cursor] + [{"referenceValue": self._cursor_name}]
            query["startAt"] = {"values": cursor, "before": False}
        if self.max_results is not None:
            query["limit"] = self.max_results
        return query


def _filter(field_name: str, operator: str, value: Any) -> dict[str, Any]:
    path = {"fieldPath": field_name}
    if value is None and operator in ("==", "!="):  # Firestore spells these as unary filters
        return {"unaryFilter": {"op": "IS_NULL" if operator == "==" else "IS_NOT_NULL", "field": path}}
    return {"fieldFilter": {"field": path, "op": _OPERATORS[operator], "value": values.encode(value)}}
