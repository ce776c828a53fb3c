"""A Server-Sent Events reader for the tests (the WHATWG parsing rules that the API uses)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.conftest import API_BASE_URL


@dataclass
class Block:
    """One blank-line-terminated block of the stream: fields, or comments only."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.fields["id"])

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.fields["data"])


def blocks(response: requests.Response) -> Iterator[Block]:
    """The stream's blocks as they arrive, until the server closes it."""
    block = Block()
    for line in response.iter_lines(chunk_size=None, decode_unicode=True):
        if line == "":
            if block.fields or block.comments:
                yield block
            block = Block()
        elif line.startswith(":"):
            block.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            previous = block.fields.get(name)
            block.fields[name] = value if previous is None or name != "data" else f"{previous}\n{value}"


def open_stream(
    job_id: str, base_url: str = API_BASE_URL, headers: dict[str, str] | None = None, **params: str
) -> requests.Response:
    return requests.get(
        f"{base_url}/api/images/events/{job_id}",
        headers=headers,
        params=params,
        stream=True,
        timeout=(5, 30),
    )


def events(response: requests.Response) -> list[Block]:
    """Every ``status`` event of a stream, read to its end."""
    with response:
        return [block for block in blocks(response) if block.fields.get("event") == "status"]
