"""Top-level test configuration: anyio on asyncio for every async test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
