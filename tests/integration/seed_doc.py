"""The seed contract's code examples, extracted from a vendored copy of the doc."""

from __future__ import annotations

import re
from pathlib import Path

from emulator.stack import PORTS

SEED_COPY = Path(__file__).resolve().parents[1] / "fixtures" / "image-api.md"
SEED_SHARED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "image-api.md"


def code_blocks(language: str) -> list[str]:
    """The doc's code blocks; a moved stack (``STACK_PORT_OFFSET``) gets its own port in them."""
    text = SEED_COPY.read_text(encoding="utf-8").replace("localhost:9006", f"localhost:{PORTS['api']}")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def curl_examples() -> list[str]:
    """The four ``curl`` examples of the seed, in order, as written."""
    return [block for block in code_blocks("bash") if block.lstrip().startswith("curl")][:4]


def python_client() -> str:
    return next(block for block in code_blocks("python") if "API_URL" in block)
