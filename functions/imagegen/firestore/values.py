"""Python values to Firestore's typed JSON values (``{"stringValue": ...}``) and back.

Timestamps are timezone-aware UTC datetimes both ways, with microseconds
(Firestore keeps nanoseconds; Python's datetime has microseconds).
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

DELETE = type("DeleteField", (), {"__repr__": lambda self: "DELETE"})()
"""In ``update`` changes: remove the field (Firestore's ``DELETE_FIELD``)."""

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def encode(value: Any) -> dict[str, Any]:
    """The Firestore ``Value`` of a Python value."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": timestamp(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {"mapValue": {"fields": encode_fields(value)}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [encode(item) for item in value]}}
    raise TypeError(f"no Firestore value for {type(value).__name__}")


def encode_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {str(key): encode(value) for key, value in data.items()}


def decode(value: dict[str, Any]) -> Any:
    """The Python value of a Firestore ``Value``."""
    ((kind, raw),) = value.items()
    if kind == "nullValue":
        return None
    if kind == "integerValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "timestampValue":
        return parse_timestamp(raw)
    if kind == "bytesValue":
        return base64.b64decode(raw)
    if kind == "mapValue":
        return decode_fields(raw.get("fields", {}))
    if kind == "arrayValue":
        return [decode(item) for item in raw.get("values", [])]
    return raw  # booleanValue, stringValue, referenceValue


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: decode(value) for key, value in fields.items()}


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, the form Firestore takes (naive means UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(raw: str) -> datetime:
    match = _TIMESTAMP.match(raw)
    if not match:
        raise ValueError(f"not a Firestore timestamp: {raw!r}")
    micros = int((match[2] or "0").ljust(9, "0")[:6])
    return datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(microsecond=micros, tzinfo=UTC)


_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def field_path(*names: str) -> str:
    """A field path in Firestore's syntax: names that are not identifiers go in backticks."""
    return ".".join(name if _SIMPLE_NAME.match(name) else "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
                    for name in names)


def split_field_path(path: str) -> list[str]:
    """The names of a field path (``images.`1``` is ``["images", "1"]``)."""
    names, current, quoted, escaped = [], "", False, False
    for char in path:
        if escaped:
            current, escaped = current + char, False
        elif quoted and char == "\\":
            escaped = True
        elif char == "`":
            quoted = not quoted
        elif char == "." and not quoted:
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    if quoted or escaped or not all(names):
        raise ValueError(f"malformed field path: {path!r}")
    return names
