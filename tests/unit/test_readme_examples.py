"""The README's TypeScript examples are exactly the code clients/typescript/tests/readme-*.test.mjs run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "clients" / "typescript" / "tests"


def test_every_example_in_the_readme_is_run_by_a_test() -> None:
    readme = (ROOT / "README.md").read_text()
    files = sorted(TESTS.glob("readme-*.test.mjs"))
    assert len(files) == 2
    for path in files:
        (snippet,) = re.findall(r"// README-START\n(.*?)\n// README-END", path.read_text(), re.DOTALL)
        assert f"```js\n{snippet}\n```" in readme, path.name
