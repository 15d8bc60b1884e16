"""Reading the ```python examples out of the docs, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(relative_path: str) -> list[str]:
    """The ```python blocks of a Markdown file in the repository, in order."""
    return _BLOCK.findall((ROOT / relative_path).read_text(encoding="utf-8"))
