"""Reading the ```python examples out of the docs, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(relative_path: str) -> list[str]:
    """The ```python blocks of a Markdown file in the repository, in order."""
    return _BLOCK.findall((ROOT / relative_path).read_text(encoding="utf-8"))


def run_block(path: str, marker: str, ns: dict[str, Any] | None = None, *,
              module: str | None = None, dont_inherit: bool = False) -> dict[str, Any]:
    """Run the one ```python block of ``path`` containing ``marker`` in ``ns`` (a new
    namespace named ``module``, else after the marker) and return the namespace.
    ``dont_inherit``: without this module's ``from __future__`` import, as a reader runs it."""
    [block] = [b for b in python_blocks(path) if marker in b]
    if ns is None:
        ns = {"__name__": module or "docs_" + marker.strip("@(\"/ ").replace(" ", "_")}
    exec(compile(block, f"{path}:{marker}", "exec", dont_inherit=dont_inherit), ns)
    return ns
